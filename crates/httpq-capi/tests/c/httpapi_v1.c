/* The HTTP Server API version 1: HttpCreateHttpHandle, HttpAddUrl,
 * HTTP_REQUEST_V1 in a V1-sized buffer, HttpRemoveUrl; and a queue of
 * length 1 that answers 503 (Http503ResponseVerbosityLimited) when full;
 * a port another socket holds is ERROR_SHARING_VIOLATION.
 * Usage: httpapi_v1 PORT BUSY_PORT */
#include <http.h>
#include "check.h"

int main(int argc, char **argv)
{
    HTTPAPI_VERSION v1 = HTTPAPI_VERSION_1;
    HANDLE q;
    ULONG n = 0, one = 1, limited = Http503ResponseVerbosityLimited;
    char buf[sizeof(HTTP_REQUEST_V1) + 2048], text[128], path[64];
    PHTTP_REQUEST_V1 r = (PHTTP_REQUEST_V1)buf;
    HTTP_RESPONSE_V1 resp;
    HTTP_DATA_CHUNK chunk;
    unsigned short url[128];

    CHECK(argc == 3);
    CHECK_EQ(HttpInitialize(v1, HTTP_INITIALIZE_SERVER, NULL), NO_ERROR);
    CHECK_EQ(HttpCreateHttpHandle(&q, 0), NO_ERROR);
    snprintf(text, sizeof text, "http://127.0.0.1:%s/v1/", argv[1]);
    widen(url, text);
    CHECK_EQ(HttpAddUrl(q, (PCWSTR)url, NULL), NO_ERROR);
    CHECK_EQ(HttpAddUrl(q, (PCWSTR)url, NULL), ERROR_ALREADY_EXISTS);
    {
        unsigned short busy[128];
        snprintf(text, sizeof text, "http://127.0.0.1:%s/", argv[2]);
        widen(busy, text);
        CHECK_EQ(HttpAddUrl(q, (PCWSTR)busy, NULL), ERROR_SHARING_VIOLATION);
        snprintf(text, sizeof text, "http://127.0.0.1:%s/v1/", argv[1]);
    }
    CHECK_EQ(HttpSetRequestQueueProperty(q, HttpServerQueueLengthProperty, &one, sizeof one, 0,
                                         NULL),
             NO_ERROR);
    CHECK_EQ(HttpSetRequestQueueProperty(q, HttpServer503VerbosityProperty, &limited,
                                         sizeof limited, 0, NULL),
             NO_ERROR);

    printf("READY v1\n");
    fflush(stdout);
    /* A version 1 handle fills HTTP_REQUEST_V1: that size is enough. */
    CHECK_EQ(HttpReceiveHttpRequest(q, HTTP_NULL_ID, 0, (PHTTP_REQUEST)r, sizeof(HTTP_REQUEST_V1) - 1,
                                    &n, NULL),
             ERROR_INSUFFICIENT_BUFFER);
    CHECK_EQ(HttpReceiveHttpRequest(q, HTTP_NULL_ID, 0, (PHTTP_REQUEST)r, sizeof buf, &n, NULL),
             NO_ERROR);
    narrow(path, sizeof path, (const unsigned short *)r->CookedUrl.pAbsPath,
           r->CookedUrl.AbsPathLength);
    CHECK(strcmp(path, "/v1/a") == 0);
    CHECK_EQ(r->Verb, HttpVerbGET);
    ZeroMemory(&resp, sizeof resp);
    resp.StatusCode = 200;
    chunk.DataChunkType = HttpDataChunkFromMemory;
    chunk.FromMemory.pBuffer = "v1";
    chunk.FromMemory.BufferLength = 2;
    resp.EntityChunkCount = 1;
    resp.pEntityChunks = &chunk;
    CHECK_EQ(HttpSendHttpResponse(q, r->RequestId, 0, (PHTTP_RESPONSE)&resp, NULL, NULL, NULL, 0,
                                  NULL, NULL),
             NO_ERROR);

    /* Nobody receives now: one request waits, the next finds the queue full. */
    printf("FULL\n");
    fflush(stdout);
    CHECK(getchar() == '\n');
    CHECK_EQ(HttpReceiveHttpRequest(q, HTTP_NULL_ID, 0, (PHTTP_REQUEST)r, sizeof buf, &n, NULL),
             NO_ERROR);
    CHECK_EQ(HttpSendHttpResponse(q, r->RequestId, 0, (PHTTP_RESPONSE)&resp, NULL, NULL, NULL, 0,
                                  NULL, NULL),
             NO_ERROR);

    CHECK_EQ(HttpRemoveUrl(q, (PCWSTR)url), NO_ERROR);
    CHECK_EQ(HttpRemoveUrl(q, (PCWSTR)url), ERROR_FILE_NOT_FOUND);
    CHECK(CloseHandle(q));
    CHECK_EQ(HttpTerminate(HTTP_INITIALIZE_SERVER, NULL), NO_ERROR);
    printf("OK httpapi_v1\n");
    return 0;
}
