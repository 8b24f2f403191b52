/* A receive timeout against a server that accepts and never answers:
 * REQUEST_COMPLETE carries ERROR_INTERNET_TIMEOUT close to the timeout set,
 * and closing the handles leaves nothing behind (the test counts this
 * process's descriptors at each COUNT; a line on stdin lets it go on).
 * Usage: wininet_timeout URL */
#include <windows.h>
#include <wininet.h>
#include "check.h"

static HANDLE g_complete, g_closing;
static HINTERNET g_created;
static DWORD g_error;

static void CALLBACK callback(HINTERNET h, DWORD_PTR context, DWORD status, LPVOID info,
                              DWORD length)
{
    (void)context;
    (void)length;
    if (status == INTERNET_STATUS_HANDLE_CREATED) g_created = h;
    if (status == INTERNET_STATUS_REQUEST_COMPLETE) {
        g_error = ((INTERNET_ASYNC_RESULT *)info)->dwError;
        SetEvent(g_complete);
    }
    if (status == INTERNET_STATUS_HANDLE_CLOSING && h == g_created) SetEvent(g_closing);
}

int main(int argc, char **argv)
{
    HINTERNET session;
    DWORD timeout = 500, got = 0, size = sizeof got;
    ULONGLONG t0, elapsed;
    int round;

    CHECK(argc == 2);
    g_complete = CreateEventA(NULL, FALSE, FALSE, NULL);
    g_closing = CreateEventA(NULL, FALSE, FALSE, NULL);
    session = InternetOpenA("timeout", INTERNET_OPEN_TYPE_DIRECT, NULL, NULL, INTERNET_FLAG_ASYNC);
    CHECK(session != NULL);
    CHECK(InternetSetOptionA(session, INTERNET_OPTION_RECEIVE_TIMEOUT, &timeout, sizeof timeout));
    CHECK(InternetQueryOptionA(session, INTERNET_OPTION_RECEIVE_TIMEOUT, &got, &size));
    CHECK_EQ(got, 500);
    InternetSetStatusCallbackA(session, callback);
    for (round = 1; round <= 3; round++) {
        t0 = GetTickCount64();
        CHECK(InternetOpenUrlA(session, argv[1], NULL, 0, 0, 7) == NULL);
        CHECK_EQ(GetLastError(), ERROR_IO_PENDING);
        CHECK_EQ(WaitForSingleObject(g_complete, 10000), WAIT_OBJECT_0);
        elapsed = GetTickCount64() - t0;
        CHECK_EQ(g_error, ERROR_INTERNET_TIMEOUT);
        CHECK(elapsed >= 450 && elapsed < 3000);
        printf("TIMEOUT %d %llu ms\n", round, (unsigned long long)elapsed);
        CHECK(InternetCloseHandle(g_created));
        CHECK_EQ(WaitForSingleObject(g_closing, 10000), WAIT_OBJECT_0);
        printf("COUNT %d\n", round);
        fflush(stdout);
        CHECK(getchar() == '\n');
    }
    CHECK(InternetCloseHandle(session));
    printf("OK wininet_timeout\n");
    return 0;
}
