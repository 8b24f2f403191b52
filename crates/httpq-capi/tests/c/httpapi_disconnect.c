/* HttpWaitForDisconnect three ways — OVERLAPPED with a completion port,
 * blocking, and OVERLAPPED with an event — then a wait on a connection
 * already gone, HttpCancelHttpRequest, and a wait ended by shutdown.
 * Usage: httpapi_disconnect PORT MODE... (MODE: iocp, blocking, event) */
#include <http.h>
#include "check.h"

static HANDLE g_queue, g_port;

static HTTP_CONNECTION_ID answer_one(const char *mode)
{
    static char buf[8192];
    PHTTP_REQUEST r = (PHTTP_REQUEST)buf;
    HTTP_RESPONSE resp;
    HTTP_DATA_CHUNK chunk;

    printf("READY %s\n", mode);
    fflush(stdout);
    CHECK_EQ(HttpReceiveHttpRequest(g_queue, HTTP_NULL_ID, 0, r, sizeof buf, NULL, NULL), NO_ERROR);
    ZeroMemory(&resp, sizeof resp);
    resp.StatusCode = 200;
    chunk.DataChunkType = HttpDataChunkFromMemory;
    chunk.FromMemory.pBuffer = (PVOID)mode;
    chunk.FromMemory.BufferLength = (ULONG)strlen(mode);
    resp.EntityChunkCount = 1;
    resp.pEntityChunks = &chunk;
    CHECK_EQ(HttpSendHttpResponse(g_queue, r->RequestId, 0, &resp, NULL, NULL, NULL, 0, NULL, NULL),
             NO_ERROR);
    return r->ConnectionId;
}

static void wait_one(const char *mode, HTTP_CONNECTION_ID conn)
{
    OVERLAPPED ov;
    LPOVERLAPPED got = NULL;
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    HANDLE ev;

    ZeroMemory(&ov, sizeof ov);
    if (strcmp(mode, "iocp") == 0) {
        CHECK_EQ(HttpWaitForDisconnect(g_queue, conn, &ov), ERROR_IO_PENDING);
        printf("WAITING %s\n", mode);
        fflush(stdout);
        CHECK(GetQueuedCompletionStatus(g_port, &bytes, &key, &got, 10000));
        CHECK(got == &ov);
        CHECK_EQ(key, 5);
    } else if (strcmp(mode, "blocking") == 0) {
        printf("WAITING %s\n", mode);
        fflush(stdout);
        CHECK_EQ(HttpWaitForDisconnect(g_queue, conn, NULL), NO_ERROR);
    } else {
        ev = CreateEventW(NULL, TRUE, TRUE, NULL);
        /* The low bit: completion sets the event and posts no packet. */
        ov.hEvent = (HANDLE)((ULONG_PTR)ev | 1);
        CHECK_EQ(HttpWaitForDisconnectEx(g_queue, conn, 0, &ov), ERROR_IO_PENDING);
        /* The event was reset when the wait started. */
        CHECK_EQ(WaitForSingleObject(ev, 0), WAIT_TIMEOUT);
        printf("WAITING %s\n", mode);
        fflush(stdout);
        CHECK_EQ(WaitForSingleObject(ev, 10000), WAIT_OBJECT_0);
        printf("DISCONNECTED %s\n", mode);
        fflush(stdout);
        CHECK(GetOverlappedResult(g_queue, &ov, &bytes, FALSE));
        CHECK(!GetQueuedCompletionStatus(g_port, &bytes, &key, &got, 50));
        CHECK_EQ(GetLastError(), WAIT_TIMEOUT);
        CHECK(CloseHandle(ev));
        ev = NULL;
    }
    if (strcmp(mode, "event") != 0) {
        printf("DISCONNECTED %s\n", mode);
        fflush(stdout);
    }
    /* Waiting on a connection already gone completes at once. */
    CHECK_EQ(HttpWaitForDisconnect(g_queue, conn, NULL), NO_ERROR);
}

int main(int argc, char **argv)
{
    static char buf[8192];
    HTTPAPI_VERSION v2 = HTTPAPI_VERSION_2;
    HTTP_SERVER_SESSION_ID session;
    HTTP_URL_GROUP_ID group;
    HTTP_BINDING_INFO bind;
    PHTTP_REQUEST r = (PHTTP_REQUEST)buf;
    HTTP_CONNECTION_ID conn;
    unsigned short url[128];
    char text[128];
    OVERLAPPED ov;
    LPOVERLAPPED got;
    DWORD bytes;
    ULONG_PTR key;
    int i;

    CHECK(argc >= 2);
    CHECK_EQ(HttpInitialize(v2, HTTP_INITIALIZE_SERVER, NULL), NO_ERROR);
    CHECK_EQ(HttpCreateServerSession(v2, &session, 0), NO_ERROR);
    CHECK_EQ(HttpCreateUrlGroup(session, &group, 0), NO_ERROR);
    CHECK_EQ(HttpCreateRequestQueue(v2, NULL, NULL, 0, &g_queue), NO_ERROR);
    bind.Flags.Present = 1;
    bind.RequestQueueHandle = g_queue;
    CHECK_EQ(HttpSetUrlGroupProperty(group, HttpServerBindingProperty, &bind, sizeof bind),
             NO_ERROR);
    snprintf(text, sizeof text, "http://127.0.0.1:%s/", argv[1]);
    widen(url, text);
    CHECK_EQ(HttpAddUrlToUrlGroup(group, (PCWSTR)url, 0, 0), NO_ERROR);
    g_port = CreateIoCompletionPort(g_queue, NULL, 5, 0);
    CHECK(g_port != NULL);

    for (i = 2; i < argc; i++) {
        conn = answer_one(argv[i]);
        wait_one(argv[i], conn);
    }
    CHECK(HttpWaitForDisconnect(g_queue, 0x7fffffffffffull, NULL) != NO_ERROR);

    /* Cancel: the client sees its connection closed with no answer. */
    printf("READY cancel\n");
    fflush(stdout);
    CHECK_EQ(HttpReceiveHttpRequest(g_queue, HTTP_NULL_ID, 0, r, sizeof buf, NULL, NULL), NO_ERROR);
    CHECK_EQ(HttpCancelHttpRequest(g_queue, r->RequestId, NULL), NO_ERROR);
    CHECK_EQ(HttpWaitForDisconnect(g_queue, r->ConnectionId, NULL), NO_ERROR);
    CHECK(HttpCancelHttpRequest(g_queue, r->RequestId, NULL) != NO_ERROR);

    /* A pending wait ends with ERROR_OPERATION_ABORTED at shutdown. */
    conn = answer_one("shutdown");
    ZeroMemory(&ov, sizeof ov);
    CHECK_EQ(HttpWaitForDisconnect(g_queue, conn, &ov), ERROR_IO_PENDING);
    CHECK_EQ(HttpShutdownRequestQueue(g_queue), NO_ERROR);
    CHECK(!GetQueuedCompletionStatus(g_port, &bytes, &key, &got, 10000));
    CHECK_EQ(GetLastError(), ERROR_OPERATION_ABORTED);
    CHECK(got == &ov);

    CHECK_EQ(HttpCloseRequestQueue(g_queue), NO_ERROR);
    CHECK(CloseHandle(g_port));
    CHECK_EQ(HttpCloseUrlGroup(group), NO_ERROR);
    CHECK_EQ(HttpCloseServerSession(session), NO_ERROR);
    printf("OK httpapi_disconnect\n");
    return 0;
}
