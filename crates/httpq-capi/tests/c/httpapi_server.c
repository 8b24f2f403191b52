/* An HTTP Server API v2 server, written as for Windows: two URL groups and
 * two queues with longest-prefix routing, ERROR_MORE_DATA and a retry by
 * id, COPY_BODY, entity body reads, a file-handle response, MORE_DATA and
 * DISCONNECT, an OVERLAPPED receive on a completion port, cancel and
 * shutdown. The Rust test drives it step by step over TCP.
 * Usage: httpapi_server PORT */
#include <http.h>
#include "check.h"

#define BIG 16384

static HANDLE g_main, g_api;
static char g_port[16];

static PHTTP_REQUEST receive(HANDLE q, ULONG flags)
{
    static char buf[BIG];
    ULONG n = 0;
    ULONG rc = HttpReceiveHttpRequest(q, HTTP_NULL_ID, flags, (PHTTP_REQUEST)buf, sizeof buf, &n,
                                      NULL);
    CHECK_EQ(rc, NO_ERROR);
    CHECK(n >= sizeof(HTTP_REQUEST) && n <= sizeof buf);
    return (PHTTP_REQUEST)buf;
}

static void path_of(PHTTP_REQUEST r, char *out, size_t cap)
{
    narrow(out, cap, (const unsigned short *)r->CookedUrl.pAbsPath, r->CookedUrl.AbsPathLength);
}

static void reply(HANDLE q, PHTTP_REQUEST r, USHORT status, const char *body)
{
    HTTP_RESPONSE resp;
    HTTP_DATA_CHUNK chunk;
    ULONG sent = 0;
    ZeroMemory(&resp, sizeof resp);
    resp.StatusCode = status;
    resp.pReason = "OK";
    resp.ReasonLength = 2;
    resp.Headers.KnownHeaders[HttpHeaderContentType].pRawValue = "text/plain";
    resp.Headers.KnownHeaders[HttpHeaderContentType].RawValueLength = 10;
    chunk.DataChunkType = HttpDataChunkFromMemory;
    chunk.FromMemory.pBuffer = (PVOID)body;
    chunk.FromMemory.BufferLength = (ULONG)strlen(body);
    resp.EntityChunkCount = 1;
    resp.pEntityChunks = &chunk;
    CHECK_EQ(HttpSendHttpResponse(q, r->RequestId, 0, &resp, NULL, &sent, NULL, 0, NULL, NULL),
             NO_ERROR);
    CHECK_EQ(sent, strlen(body));
}

/* GET /hello?x=1: too small, then a retry by id; every field http.sys fills. */
static void step_more_data(void)
{
    static char big[BIG];
    char small[sizeof(HTTP_REQUEST) + 8], s[256];
    PHTTP_REQUEST r = (PHTTP_REQUEST)small;
    ULONG n = 0, i, found = 0;
    HTTP_REQUEST_ID id;
    HTTP_RESPONSE resp;
    HTTP_UNKNOWN_HEADER extra;
    HTTP_DATA_CHUNK chunk;
    struct sockaddr_in *remote, *local;

    CHECK_EQ(HttpReceiveHttpRequest(g_main, HTTP_NULL_ID, 0, r, sizeof(HTTP_REQUEST_V1) - 1, &n,
                                    NULL),
             ERROR_INSUFFICIENT_BUFFER);
    printf("READY more_data\n");
    fflush(stdout);
    CHECK_EQ(HttpReceiveHttpRequest(g_main, HTTP_NULL_ID, 0, r, sizeof small, &n, NULL),
             ERROR_MORE_DATA);
    CHECK(!HTTP_IS_NULL_ID(&r->RequestId));
    CHECK(n > sizeof small && n <= sizeof big);
    id = r->RequestId;
    CHECK_EQ(HttpReceiveHttpRequest(g_main, id, 0, (PHTTP_REQUEST)big, n, &n, NULL), NO_ERROR);
    r = (PHTTP_REQUEST)big;
    CHECK_EQ(r->RequestId, id);
    CHECK_EQ(r->Verb, HttpVerbGET);
#ifdef HTTPQ_HTTP_H
    CHECK_EQ(r->s.Verb, HttpVerbGET); /* Wine's spelling; the SDK has no s */
#endif
    CHECK_EQ(r->Version.MajorVersion, 1);
    CHECK_EQ(r->Version.MinorVersion, 1);
    CHECK_EQ(r->UrlContext, 1);
    CHECK(r->ConnectionId != HTTP_NULL_ID);
    CHECK(r->pSslInfo == NULL);
    /* The cooked URL: UTF-16, byte lengths, host/path/query inside the full URL. */
    narrow(s, sizeof s, (const unsigned short *)r->CookedUrl.pFullUrl, r->CookedUrl.FullUrlLength);
    printf("URL %s\n", s);
    CHECK(r->CookedUrl.pHost == r->CookedUrl.pFullUrl + 7);
    CHECK(r->CookedUrl.pAbsPath == r->CookedUrl.pHost + r->CookedUrl.HostLength / 2);
    CHECK(r->CookedUrl.pQueryString ==
          r->CookedUrl.pAbsPath + r->CookedUrl.AbsPathLength / 2);
    CHECK_EQ(r->CookedUrl.FullUrlLength, (7 + 10 + strlen(g_port) + 6 + 4) * 2);
    CHECK_EQ(r->CookedUrl.AbsPathLength, 6 * 2);
    CHECK_EQ(r->CookedUrl.QueryStringLength, 4 * 2);
    CHECK(r->CookedUrl.pFullUrl[r->CookedUrl.FullUrlLength / 2] == 0);
    CHECK_EQ(r->RawUrlLength, 10);
    CHECK(memcmp(r->pRawUrl, "/hello?x=1", 10) == 0);
    /* Known headers by id, the rest by name. */
    CHECK_EQ(r->Headers.KnownHeaders[HttpHeaderUserAgent].RawValueLength, 6);
    CHECK(memcmp(r->Headers.KnownHeaders[HttpHeaderUserAgent].pRawValue, "c-test", 6) == 0);
    CHECK(r->Headers.KnownHeaders[HttpHeaderHost].RawValueLength > 0);
    for (i = 0; i < r->Headers.UnknownHeaderCount; i++) {
        PHTTP_UNKNOWN_HEADER u = &r->Headers.pUnknownHeaders[i];
        if (u->NameLength == 6 && memcmp(u->pName, "X-Test", 6) == 0) {
            CHECK_EQ(u->RawValueLength, 3);
            CHECK(memcmp(u->pRawValue, "yes", 3) == 0);
            found = 1;
        }
    }
    CHECK(found);
    /* Addresses are the platform's sockaddr. */
    remote = (struct sockaddr_in *)r->Address.pRemoteAddress;
    local = (struct sockaddr_in *)r->Address.pLocalAddress;
    CHECK_EQ(remote->sin_family, AF_INET);
    CHECK_EQ(ntohl(remote->sin_addr.s_addr), 0x7f000001);
    CHECK_EQ(ntohs(local->sin_port), atoi(g_port));
    CHECK(r->BytesReceived > 0);
    CHECK_EQ(r->EntityChunkCount, 0);
    CHECK_EQ(r->Flags & HTTP_REQUEST_FLAG_MORE_ENTITY_BODY_EXISTS, 0);
    /* The answer: a known and an unknown header, a reason, a body. */
    ZeroMemory(&resp, sizeof resp);
    resp.StatusCode = 201;
    resp.pReason = "Made";
    resp.ReasonLength = 4;
    resp.Headers.KnownHeaders[HttpHeaderRetryAfter].pRawValue = "5";
    resp.Headers.KnownHeaders[HttpHeaderRetryAfter].RawValueLength = 1;
    extra.pName = "X-Reply";
    extra.NameLength = 7;
    extra.pRawValue = "ok";
    extra.RawValueLength = 2;
    resp.Headers.pUnknownHeaders = &extra;
    resp.Headers.UnknownHeaderCount = 1;
    chunk.DataChunkType = HttpDataChunkFromMemory;
    chunk.FromMemory.pBuffer = "hello from C";
    chunk.FromMemory.BufferLength = 12;
    resp.EntityChunkCount = 1;
    resp.pEntityChunks = &chunk;
    CHECK_EQ(HttpSendHttpResponse(g_main, id, 0, &resp, NULL, NULL, NULL, 0, NULL, NULL),
             NO_ERROR);
    /* Answered: the id is no longer valid. */
    CHECK_EQ(HttpSendHttpResponse(g_main, id, 0, &resp, NULL, NULL, NULL, 0, NULL, NULL),
             ERROR_CONNECTION_INVALID);
}

/* POST /copy (10 bytes, COPY_BODY) and POST /big (100,000 bytes, read in pieces). */
static void step_bodies(void)
{
    static char piece[4096];
    char text[64];
    PHTTP_REQUEST r;
    ULONG n = 0, rc;
    unsigned long total = 0, sum = 0, i;

    printf("READY bodies\n");
    fflush(stdout);
    r = receive(g_main, HTTP_RECEIVE_REQUEST_FLAG_COPY_BODY);
    CHECK_EQ(r->Verb, HttpVerbPOST);
    CHECK_EQ(r->EntityChunkCount, 1);
    CHECK_EQ(r->pEntityChunks[0].DataChunkType, HttpDataChunkFromMemory);
    CHECK_EQ(r->pEntityChunks[0].FromMemory.BufferLength, 10);
    CHECK(memcmp(r->pEntityChunks[0].FromMemory.pBuffer, "0123456789", 10) == 0);
    CHECK_EQ(r->Flags & HTTP_REQUEST_FLAG_MORE_ENTITY_BODY_EXISTS, 0);
    CHECK_EQ(HttpReceiveRequestEntityBody(g_main, r->RequestId, 0, piece, sizeof piece, &n, NULL),
             ERROR_HANDLE_EOF);
    reply(g_main, r, 200, "copied 10");

    r = receive(g_main, 0);
    CHECK(r->Flags & HTTP_REQUEST_FLAG_MORE_ENTITY_BODY_EXISTS);
    for (;;) {
        rc = HttpReceiveRequestEntityBody(g_main, r->RequestId, 0, piece, sizeof piece, &n, NULL);
        if (rc == ERROR_HANDLE_EOF) break;
        CHECK_EQ(rc, NO_ERROR);
        for (i = 0; i < n; i++) sum += (unsigned char)piece[i];
        total += n;
    }
    snprintf(text, sizeof text, "%lu %lu", total, sum);
    reply(g_main, r, 200, text);

    /* FLUSH_BODY: what fits is copied, the rest is dropped and the body
     * reads as ended. */
    r = receive(g_main, HTTP_RECEIVE_REQUEST_FLAG_FLUSH_BODY);
    CHECK_EQ(r->Flags & HTTP_REQUEST_FLAG_MORE_ENTITY_BODY_EXISTS, 0);
    CHECK(r->EntityChunkCount <= 1);
    CHECK_EQ(HttpReceiveRequestEntityBody(g_main, r->RequestId, 0, piece, sizeof piece, &n, NULL),
             ERROR_HANDLE_EOF);
    reply(g_main, r, 200, "flushed");
}

/* GET /file: memory, then two byte ranges of a file handle (one to EOF). */
static void step_file(void)
{
    static char data[100000];
    char dir[MAX_PATH], path[MAX_PATH];
    HTTP_RESPONSE resp;
    HTTP_DATA_CHUNK chunks[3];
    HANDLE file;
    DWORD n, i;
    PHTTP_REQUEST r;

    for (i = 0; i < sizeof data; i++) data[i] = (char)('a' + i % 26);
    CHECK(GetTempPathA(sizeof dir, dir) > 0);
    CHECK(GetTempFileNameA(dir, "hq", 0, path) != 0);
    file = CreateFileA(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    CHECK(file != INVALID_HANDLE_VALUE);
    CHECK(WriteFile(file, data, sizeof data, &n, NULL) && n == sizeof data);
    CHECK(CloseHandle(file));
    file = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                       FILE_ATTRIBUTE_NORMAL, NULL);
    CHECK(file != INVALID_HANDLE_VALUE);

    printf("READY file\n");
    fflush(stdout);
    r = receive(g_main, 0);
    ZeroMemory(&resp, sizeof resp);
    resp.StatusCode = 200;
    chunks[0].DataChunkType = HttpDataChunkFromMemory;
    chunks[0].FromMemory.pBuffer = "HEAD:";
    chunks[0].FromMemory.BufferLength = 5;
    chunks[1].DataChunkType = HttpDataChunkFromFileHandle;
    chunks[1].FromFileHandle.ByteRange.StartingOffset.QuadPart = 10;
    chunks[1].FromFileHandle.ByteRange.Length.QuadPart = 1000;
    chunks[1].FromFileHandle.FileHandle = file;
    chunks[2].DataChunkType = HttpDataChunkFromFileHandle;
    chunks[2].FromFileHandle.ByteRange.StartingOffset.QuadPart = 99000;
    chunks[2].FromFileHandle.ByteRange.Length.QuadPart = HTTP_BYTE_RANGE_TO_EOF;
    chunks[2].FromFileHandle.FileHandle = file;
    resp.EntityChunkCount = 3;
    resp.pEntityChunks = chunks;
    CHECK_EQ(HttpSendHttpResponse(g_main, r->RequestId, 0, &resp, NULL, NULL, NULL, 0, NULL, NULL),
             NO_ERROR);
    CHECK(CloseHandle(file));
    CHECK(DeleteFileA(path));
}

/* GET /more: a head with MORE_DATA, body in three sends, the last with DISCONNECT. */
static void step_more_and_disconnect(void)
{
    const char *parts[3] = {"one ", "two ", "three"};
    HTTP_RESPONSE resp;
    HTTP_DATA_CHUNK chunk;
    PHTTP_REQUEST r;
    HTTP_REQUEST_ID id;
    int i;

    printf("READY more\n");
    fflush(stdout);
    r = receive(g_main, 0);
    id = r->RequestId;
    ZeroMemory(&resp, sizeof resp);
    resp.StatusCode = 200;
    CHECK_EQ(HttpSendHttpResponse(g_main, id, HTTP_SEND_RESPONSE_FLAG_MORE_DATA, &resp, NULL, NULL,
                                  NULL, 0, NULL, NULL),
             NO_ERROR);
    for (i = 0; i < 3; i++) {
        ULONG flags = i < 2 ? HTTP_SEND_RESPONSE_FLAG_MORE_DATA : HTTP_SEND_RESPONSE_FLAG_DISCONNECT;
        chunk.DataChunkType = HttpDataChunkFromMemory;
        chunk.FromMemory.pBuffer = (PVOID)parts[i];
        chunk.FromMemory.BufferLength = (ULONG)strlen(parts[i]);
        CHECK_EQ(HttpSendResponseEntityBody(g_main, id, flags, 1, &chunk, NULL, NULL, 0, NULL, NULL),
                 NO_ERROR);
    }
}

/* GET /api/x reaches the api queue (context 2); GET /apix stays on main. */
static void step_routing(void)
{
    char path[64];
    PHTTP_REQUEST r;

    printf("READY routing\n");
    fflush(stdout);
    r = receive(g_api, 0);
    path_of(r, path, sizeof path);
    CHECK(strcmp(path, "/api/x") == 0);
    CHECK_EQ(r->UrlContext, 2);
    reply(g_api, r, 200, "api");
    r = receive(g_main, 0);
    path_of(r, path, sizeof path);
    CHECK(strcmp(path, "/apix") == 0);
    CHECK_EQ(r->UrlContext, 1);
    reply(g_main, r, 200, "main");
}

/* No receive is pending while the test sends garbage (answered 400 by the
 * server itself); then two pipelined requests: the second is held back
 * until the first is answered, as http.sys does. */
static void step_pipelining(HANDLE port)
{
    static char buf2[BIG];
    OVERLAPPED ov;
    LPOVERLAPPED got = NULL;
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    char path[64];
    PHTTP_REQUEST r, r2 = (PHTTP_REQUEST)buf2;

    printf("IDLE\n");
    fflush(stdout);
    CHECK(getchar() == '\n');
    printf("READY pipelining\n");
    fflush(stdout);
    r = receive(g_main, 0);
    path_of(r, path, sizeof path);
    CHECK(strcmp(path, "/one") == 0);
    ZeroMemory(&ov, sizeof ov);
    CHECK_EQ(HttpReceiveHttpRequest(g_main, HTTP_NULL_ID, 0, r2, sizeof buf2, NULL, &ov),
             ERROR_IO_PENDING);
    CHECK(!GetQueuedCompletionStatus(port, &bytes, &key, &got, 200));
    CHECK_EQ(GetLastError(), WAIT_TIMEOUT);
    reply(g_main, r, 200, "one");
    CHECK(GetQueuedCompletionStatus(port, &bytes, &key, &got, 10000));
    CHECK(got == &ov);
    path_of(r2, path, sizeof path);
    CHECK(strcmp(path, "/two") == 0);
    reply(g_main, r2, 200, "two");
}

/* An OVERLAPPED receive completes on the port; an OVERLAPPED send with an
 * event whose low bit is set completes without a packet. */
static void step_overlapped(HANDLE port)
{
    static char buf[BIG];
    OVERLAPPED ov, send_ov;
    LPOVERLAPPED got = NULL;
    DWORD bytes = 0, n = 0;
    ULONG_PTR key = 0;
    HTTP_RESPONSE resp;
    HTTP_DATA_CHUNK chunk;
    HANDLE ev;
    char path[64];
    PHTTP_REQUEST r = (PHTTP_REQUEST)buf;

    ZeroMemory(&ov, sizeof ov);
    CHECK_EQ(HttpReceiveHttpRequest(g_main, HTTP_NULL_ID, 0, r, sizeof buf, NULL, &ov),
             ERROR_IO_PENDING);
    CHECK(!HasOverlappedIoCompleted(&ov));
    CHECK(!GetOverlappedResult(g_main, &ov, &n, FALSE));
    CHECK_EQ(GetLastError(), ERROR_IO_INCOMPLETE);
    printf("READY overlapped\n");
    fflush(stdout);
    CHECK(GetQueuedCompletionStatus(port, &bytes, &key, &got, 10000));
    CHECK(got == &ov);
    CHECK_EQ(key, 77);
    CHECK(bytes >= sizeof(HTTP_REQUEST));
    CHECK(HasOverlappedIoCompleted(&ov));
    CHECK(GetOverlappedResult(g_main, &ov, &n, TRUE));
    CHECK_EQ(n, bytes);
    path_of(r, path, sizeof path);
    CHECK(strcmp(path, "/ov") == 0);

    ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    ZeroMemory(&send_ov, sizeof send_ov);
    send_ov.hEvent = (HANDLE)((ULONG_PTR)ev | 1);
    ZeroMemory(&resp, sizeof resp);
    resp.StatusCode = 200;
    chunk.DataChunkType = HttpDataChunkFromMemory;
    chunk.FromMemory.pBuffer = "overlapped";
    chunk.FromMemory.BufferLength = 10;
    resp.EntityChunkCount = 1;
    resp.pEntityChunks = &chunk;
    n = HttpSendHttpResponse(g_main, r->RequestId, 0, &resp, NULL, NULL, NULL, 0, &send_ov, NULL);
    CHECK(n == ERROR_IO_PENDING || n == NO_ERROR);
    CHECK_EQ(WaitForSingleObject(ev, 10000), WAIT_OBJECT_0);
    CHECK(GetOverlappedResult(g_main, &send_ov, &n, FALSE));
    CHECK_EQ(n, 10);
    CHECK(!GetQueuedCompletionStatus(port, &bytes, &key, &got, 100));
    CHECK_EQ(GetLastError(), WAIT_TIMEOUT);
    CHECK(CloseHandle(ev));
}

/* CancelIoEx ends a pending receive; HttpShutdownRequestQueue ends the
 * next one; both complete with ERROR_OPERATION_ABORTED on the port. */
static void step_cancel_and_shutdown(HANDLE port)
{
    static char buf[BIG];
    OVERLAPPED ov;
    LPOVERLAPPED got = NULL;
    DWORD bytes = 0;
    ULONG_PTR key = 0;

    ZeroMemory(&ov, sizeof ov);
    CHECK_EQ(HttpReceiveHttpRequest(g_main, HTTP_NULL_ID, 0, (PHTTP_REQUEST)buf, sizeof buf, NULL,
                                    &ov),
             ERROR_IO_PENDING);
    CHECK(CancelIoEx(g_main, &ov));
    CHECK(!GetQueuedCompletionStatus(port, &bytes, &key, &got, 10000));
    CHECK_EQ(GetLastError(), ERROR_OPERATION_ABORTED);
    CHECK(got == &ov);
    CHECK(!CancelIoEx(g_main, &ov));
    CHECK_EQ(GetLastError(), ERROR_NOT_FOUND);

    ZeroMemory(&ov, sizeof ov);
    CHECK_EQ(HttpReceiveHttpRequest(g_main, HTTP_NULL_ID, 0, (PHTTP_REQUEST)buf, sizeof buf, NULL,
                                    &ov),
             ERROR_IO_PENDING);
    CHECK_EQ(HttpShutdownRequestQueue(g_main), NO_ERROR);
    CHECK(!GetQueuedCompletionStatus(port, &bytes, &key, &got, 10000));
    CHECK_EQ(GetLastError(), ERROR_OPERATION_ABORTED);
    CHECK(got == &ov);
    CHECK_EQ(HttpReceiveHttpRequest(g_main, HTTP_NULL_ID, 0, (PHTTP_REQUEST)buf, sizeof buf, NULL,
                                    NULL),
             ERROR_OPERATION_ABORTED);
}

int main(int argc, char **argv)
{
    HTTPAPI_VERSION v1 = HTTPAPI_VERSION_1, v2 = HTTPAPI_VERSION_2;
    HTTP_SERVER_SESSION_ID session, bad;
    HTTP_URL_GROUP_ID group_main, group_api;
    HTTP_BINDING_INFO bind;
    HTTP_TIMEOUT_LIMIT_INFO limits;
    HANDLE again, port;
    ULONG len = 100;
    unsigned short url[128], url_api[128];
    char text[128];

    CHECK(argc == 2);
    snprintf(g_port, sizeof g_port, "%s", argv[1]);
    CHECK_EQ(HttpInitialize(v2, HTTP_INITIALIZE_SERVER, NULL), NO_ERROR);
    CHECK_EQ(HttpCreateServerSession(v1, &bad, 0), ERROR_REVISION_MISMATCH);
    CHECK_EQ(HttpCreateServerSession(v2, &session, 0), NO_ERROR);
    CHECK_EQ(HttpCreateUrlGroup(session, &group_main, 0), NO_ERROR);
    CHECK_EQ(HttpCreateUrlGroup(session, &group_api, 0), NO_ERROR);
    CHECK_EQ(HttpCreateRequestQueue(v2, L"capi-main", NULL, 0, &g_main), NO_ERROR);
    CHECK_EQ(HttpCreateRequestQueue(v2, L"capi-main", NULL, 0, &again), ERROR_ALREADY_EXISTS);
    CHECK_EQ(HttpCreateRequestQueue(v2, L"capi-main", NULL,
                                    HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING, &again),
             NO_ERROR);
    CHECK(CloseHandle(again));
    CHECK_EQ(HttpCreateRequestQueue(v2, NULL, NULL, 0, &g_api), NO_ERROR);

    bind.Flags.Present = 1;
    bind.RequestQueueHandle = g_main;
    CHECK_EQ(HttpSetUrlGroupProperty(group_main, HttpServerBindingProperty, &bind, sizeof bind),
             NO_ERROR);
    bind.RequestQueueHandle = g_api;
    CHECK_EQ(HttpSetUrlGroupProperty(group_api, HttpServerBindingProperty, &bind, sizeof bind),
             NO_ERROR);
    ZeroMemory(&limits, sizeof limits);
    limits.Flags.Present = 1;
    limits.EntityBody = 30;
    limits.HeaderWait = 30;
    CHECK_EQ(HttpSetUrlGroupProperty(group_api, HttpServerTimeoutsProperty, &limits, sizeof limits),
             NO_ERROR);
    CHECK_EQ(HttpSetServerSessionProperty(session, HttpServerTimeoutsProperty, &limits,
                                          sizeof limits),
             NO_ERROR);
    CHECK_EQ(HttpSetRequestQueueProperty(g_main, HttpServerQueueLengthProperty, &len, sizeof len,
                                         0, NULL),
             NO_ERROR);

    snprintf(text, sizeof text, "http://127.0.0.1:%s/", g_port);
    widen(url, text);
    snprintf(text, sizeof text, "http://127.0.0.1:%s/api/", g_port);
    widen(url_api, text);
    CHECK_EQ(HttpAddUrlToUrlGroup(group_main, (PCWSTR)url, 1, 0), NO_ERROR);
    CHECK_EQ(HttpAddUrlToUrlGroup(group_api, (PCWSTR)url_api, 2, 0), NO_ERROR);
    CHECK_EQ(HttpAddUrlToUrlGroup(group_api, (PCWSTR)url_api, 3, 0), ERROR_ALREADY_EXISTS);
    CHECK_EQ(HttpAddUrlToUrlGroup(group_api, L"not a url", 3, 0), ERROR_INVALID_PARAMETER);

    step_more_data();
    step_bodies();
    step_file();
    step_more_and_disconnect();
    step_routing();
    port = CreateIoCompletionPort(g_main, NULL, 77, 0);
    CHECK(port != NULL);
    step_pipelining(port);
    step_overlapped(port);
    step_cancel_and_shutdown(port);

    CHECK_EQ(HttpRemoveUrlFromUrlGroup(group_api, NULL, HTTP_URL_FLAG_REMOVE_ALL), NO_ERROR);
    CHECK_EQ(HttpRemoveUrlFromUrlGroup(group_main, (PCWSTR)url, 0), NO_ERROR);
    CHECK_EQ(HttpRemoveUrlFromUrlGroup(group_main, (PCWSTR)url, 0), ERROR_FILE_NOT_FOUND);
    CHECK_EQ(HttpCloseRequestQueue(g_main), NO_ERROR);
    CHECK_EQ(HttpCloseRequestQueue(g_api), NO_ERROR);
    CHECK_EQ(HttpCloseRequestQueue(g_api), ERROR_INVALID_HANDLE);
    CHECK(CloseHandle(port));
    CHECK_EQ(HttpCloseUrlGroup(group_main), NO_ERROR);
    CHECK_EQ(HttpCloseUrlGroup(group_api), NO_ERROR);
    CHECK_EQ(HttpCloseServerSession(session), NO_ERROR);
    CHECK_EQ(HttpTerminate(HTTP_INITIALIZE_SERVER, NULL), NO_ERROR);
    printf("OK httpapi_server\n");
    return 0;
}
