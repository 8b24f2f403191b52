/* Closing a handle with a read pending: the read completes first, as
 * cancelled (REQUEST_COMPLETE with ERROR_INTERNET_OPERATION_CANCELLED),
 * then HANDLE_CLOSING, and nothing after it. The server sends a head and
 * part of the body, then stalls. Usage: wininet_cancel URL */
#include <windows.h>
#include <wininet.h>
#include "check.h"

static HANDLE g_complete, g_closing;
static DWORD g_error, g_after_closing;
static DWORD_PTR g_result;
static volatile LONG g_closed;
static char g_trace[1024];

static void CALLBACK callback(HINTERNET h, DWORD_PTR context, DWORD status, LPVOID info,
                              DWORD length)
{
    char n[16];
    (void)h;
    (void)context;
    (void)length;
    if (g_closed) g_after_closing++;
    snprintf(n, sizeof n, " %lu", (unsigned long)status);
    if (strlen(g_trace) + strlen(n) < sizeof g_trace) strcat(g_trace, n);
    if (status == INTERNET_STATUS_REQUEST_COMPLETE) {
        g_error = ((INTERNET_ASYNC_RESULT *)info)->dwError;
        g_result = ((INTERNET_ASYNC_RESULT *)info)->dwResult;
        SetEvent(g_complete);
    }
    if (status == INTERNET_STATUS_HANDLE_CLOSING) {
        g_closed = 1;
        SetEvent(g_closing);
    }
}

int main(int argc, char **argv)
{
    static char buf[4096];
    HINTERNET session, request;
    DWORD n = 0, total = 0;

    CHECK(argc == 2);
    g_complete = CreateEventA(NULL, FALSE, FALSE, NULL);
    g_closing = CreateEventA(NULL, TRUE, FALSE, NULL);
    session = InternetOpenA("cancel", INTERNET_OPEN_TYPE_DIRECT, NULL, NULL, INTERNET_FLAG_ASYNC);
    CHECK(session != NULL);
    InternetSetStatusCallbackA(session, callback);
    CHECK(InternetOpenUrlA(session, argv[1], NULL, 0, 0, 9) == NULL);
    CHECK_EQ(GetLastError(), ERROR_IO_PENDING);
    CHECK_EQ(WaitForSingleObject(g_complete, 10000), WAIT_OBJECT_0);
    CHECK_EQ(g_error, 0);
    request = (HINTERNET)g_result;
    CHECK(request != NULL);
    /* The part of the body that came, then a read that has to wait. */
    for (;;) {
        if (!InternetReadFile(request, buf, sizeof buf, &n)) break;
        CHECK(n > 0);
        total += n;
    }
    CHECK_EQ(GetLastError(), ERROR_IO_PENDING);
    CHECK_EQ(total, 10);
    g_trace[0] = 0;
    CHECK(InternetCloseHandle(request));
    CHECK_EQ(WaitForSingleObject(g_closing, 10000), WAIT_OBJECT_0);
    /* The pending read ended as cancelled before HANDLE_CLOSING. */
    CHECK_EQ(g_error, ERROR_INTERNET_OPERATION_CANCELLED);
    printf("CLOSE%s\n", g_trace);
    CHECK(InternetCloseHandle(session));
    CHECK_EQ(g_after_closing, 0);
    printf("OK wininet_cancel\n");
    return 0;
}
