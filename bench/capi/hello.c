/* A hello-world server written as for Windows' HTTP Server API: THREADS
 * threads each receive and answer synchronously, as Microsoft's samples
 * do. The C twin of crates/httpq-server/examples/hello_blocking.rs.
 * Usage: hello PORT [THREADS] */
#include <http.h>
#include <stdio.h>
#include <stdlib.h>

static HANDLE g_queue;

static DWORD WINAPI serve(LPVOID unused)
{
    char buf[sizeof(HTTP_REQUEST) + 4096];
    PHTTP_REQUEST r = (PHTTP_REQUEST)buf;
    HTTP_RESPONSE resp;
    HTTP_DATA_CHUNK chunk;
    ULONG rc;
    (void)unused;
    for (;;) {
        rc = HttpReceiveHttpRequest(g_queue, HTTP_NULL_ID, 0, r, sizeof buf, NULL, NULL);
        if (rc != NO_ERROR) return rc;
        ZeroMemory(&resp, sizeof resp);
        resp.StatusCode = 200;
        resp.pReason = "OK";
        resp.ReasonLength = 2;
        resp.Headers.KnownHeaders[HttpHeaderContentType].pRawValue = "text/plain";
        resp.Headers.KnownHeaders[HttpHeaderContentType].RawValueLength = 10;
        chunk.DataChunkType = HttpDataChunkFromMemory;
        chunk.FromMemory.pBuffer = "Hello, World!";
        chunk.FromMemory.BufferLength = 13;
        resp.EntityChunkCount = 1;
        resp.pEntityChunks = &chunk;
        HttpSendHttpResponse(g_queue, r->RequestId, 0, &resp, NULL, NULL, NULL, 0, NULL, NULL);
    }
}

int main(int argc, char **argv)
{
    HTTPAPI_VERSION v2 = HTTPAPI_VERSION_2;
    HTTP_SERVER_SESSION_ID session;
    HTTP_URL_GROUP_ID group;
    HTTP_BINDING_INFO bind;
    unsigned short url[128];
    char text[128];
    int threads = argc > 2 ? atoi(argv[2]) : 2, i;
    HANDLE th[64];

    if (argc < 2 || threads < 1 || threads > 64) return 2;
    if (HttpInitialize(v2, HTTP_INITIALIZE_SERVER, NULL) != NO_ERROR) return 1;
    HttpCreateServerSession(v2, &session, 0);
    HttpCreateUrlGroup(session, &group, 0);
    HttpCreateRequestQueue(v2, NULL, NULL, 0, &g_queue);
    bind.Flags.Present = 1;
    bind.RequestQueueHandle = g_queue;
    HttpSetUrlGroupProperty(group, HttpServerBindingProperty, &bind, sizeof bind);
    snprintf(text, sizeof text, "http://127.0.0.1:%s/", argv[1]);
    for (i = 0; text[i]; i++) url[i] = (unsigned char)text[i];
    url[i] = 0;
    if (HttpAddUrlToUrlGroup(group, (PCWSTR)url, 0, 0) != NO_ERROR) return 1;
    printf("listening on %s\n", text);
    fflush(stdout);
    for (i = 0; i < threads; i++) th[i] = CreateThread(NULL, 0, serve, NULL, 0, NULL);
    for (i = 0; i < threads; i++) WaitForSingleObject(th[i], INFINITE);
    return 0;
}
