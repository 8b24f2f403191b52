/* The seed's WinInet full-asynchronous download: INTERNET_FLAG_ASYNC, a
 * status callback, InternetOpenUrl answering ERROR_IO_PENDING, the handle
 * from HANDLE_CREATED and REQUEST_COMPLETE, InternetReadFileEx(IRF_ASYNC)
 * into the caller's buffer, then InternetCloseHandle and HANDLE_CLOSING.
 * Prints the notification numbers it saw. Usage: wininet_async URL OUTFILE */
#include <windows.h>
#include <wininet.h>
#include "check.h"

static HANDLE g_complete, g_closing;
static HINTERNET g_created;
static DWORD_PTR g_result;
static DWORD g_error;
static char g_trace[8192];

static void CALLBACK callback(HINTERNET h, DWORD_PTR context, DWORD status, LPVOID info,
                              DWORD length)
{
    char n[16];
    INTERNET_ASYNC_RESULT *res = (INTERNET_ASYNC_RESULT *)info;
    snprintf(n, sizeof n, " %lu", (unsigned long)status);
    if (strlen(g_trace) + strlen(n) < sizeof g_trace) strcat(g_trace, n);
    CHECK_EQ(context, 42);
    switch (status) {
    case INTERNET_STATUS_HANDLE_CREATED:
        CHECK_EQ(length, sizeof(HINTERNET));
        /* The seed reads it as res->dwResult; *(HINTERNET *)info is the same. */
        g_created = (HINTERNET)res->dwResult;
        CHECK(g_created == h);
        break;
    case INTERNET_STATUS_REQUEST_SENT:
    case INTERNET_STATUS_RESPONSE_RECEIVED:
        CHECK_EQ(length, sizeof(DWORD));
        break;
    case INTERNET_STATUS_REQUEST_COMPLETE:
        CHECK_EQ(length, sizeof(INTERNET_ASYNC_RESULT));
        g_result = res->dwResult;
        g_error = res->dwError;
        SetEvent(g_complete);
        break;
    case INTERNET_STATUS_HANDLE_CLOSING:
        CHECK_EQ(length, sizeof(HINTERNET));
        CHECK(*(HINTERNET *)info == h);
        SetEvent(g_closing);
        break;
    default:
        break;
    }
}

int main(int argc, char **argv)
{
    HINTERNET session, request;
    DWORD code = 0, size = sizeof code, length = 0, total = 0, n = 0, written = 0;
    char *body, text[64];
    INTERNET_BUFFERSA ib;
    HANDLE file;

    CHECK(argc == 3);
    g_complete = CreateEventA(NULL, FALSE, FALSE, NULL);
    g_closing = CreateEventA(NULL, FALSE, FALSE, NULL);
    session = InternetOpenA("seed-004", INTERNET_OPEN_TYPE_PRECONFIG, NULL, NULL,
                            INTERNET_FLAG_ASYNC);
    CHECK(session != NULL);
    CHECK(InternetSetStatusCallbackA(session, callback) == NULL);

    request = InternetOpenUrlA(session, argv[1], NULL, 0, INTERNET_FLAG_RELOAD, 42);
    CHECK(request == NULL);
    CHECK_EQ(GetLastError(), ERROR_IO_PENDING);
    CHECK_EQ(WaitForSingleObject(g_complete, 10000), WAIT_OBJECT_0);
    CHECK_EQ(g_error, 0);
    request = (HINTERNET)g_result;
    CHECK(request != NULL && request == g_created);
    printf("OPEN%s\n", g_trace);
    g_trace[0] = 0;

    CHECK(HttpQueryInfoA(request, HTTP_QUERY_STATUS_CODE | HTTP_QUERY_FLAG_NUMBER, &code, &size,
                         NULL));
    CHECK_EQ(code, 200);
    size = sizeof length;
    CHECK(HttpQueryInfoA(request, HTTP_QUERY_CONTENT_LENGTH | HTTP_QUERY_FLAG_NUMBER, &length,
                         &size, NULL));
    size = sizeof text;
    CHECK(HttpQueryInfoA(request, HTTP_QUERY_STATUS_TEXT, text, &size, NULL));
    CHECK(strcmp(text, "OK") == 0);
    body = malloc(length + 1);
    CHECK(body != NULL);

    /* Read until 0 bytes, the count written back when each read completes. */
    for (;;) {
        ZeroMemory(&ib, sizeof ib);
        ib.dwStructSize = sizeof ib;
        ib.lpvBuffer = body + total;
        ib.dwBufferLength = length + 1 - total < 65536 ? length + 1 - total : 65536;
        if (!InternetReadFileExA(request, &ib, IRF_ASYNC, 42)) {
            CHECK_EQ(GetLastError(), ERROR_IO_PENDING);
            CHECK_EQ(WaitForSingleObject(g_complete, 10000), WAIT_OBJECT_0);
            CHECK_EQ(g_error, 0);
        }
        n = ib.dwBufferLength;
        if (n == 0) break;
        total += n;
        CHECK(total <= length);
    }
    CHECK_EQ(total, length);
    printf("READ%s\n", g_trace);
    g_trace[0] = 0;

    file = CreateFileA(argv[2], GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    CHECK(file != INVALID_HANDLE_VALUE);
    CHECK(WriteFile(file, body, total, &written, NULL) && written == total);
    CHECK(CloseHandle(file));
    free(body);

    CHECK(InternetCloseHandle(request));
    CHECK_EQ(WaitForSingleObject(g_closing, 10000), WAIT_OBJECT_0);
    printf("CLOSE%s\n", g_trace);
    CHECK(InternetSetStatusCallbackA(session, NULL) == callback);
    CHECK(InternetCloseHandle(session));
    CHECK(!InternetCloseHandle(session));
    CHECK_EQ(GetLastError(), ERROR_INVALID_HANDLE);
    CHECK(CloseHandle(g_complete) && CloseHandle(g_closing));
    printf("OK wininet_async %lu\n", (unsigned long)total);
    return 0;
}
