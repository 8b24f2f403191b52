/* WinInet without INTERNET_FLAG_ASYNC: InternetConnect, HttpOpenRequest,
 * HttpSendRequest with headers and a body, HttpQueryInfo (numbers, text,
 * custom headers, a small buffer, a missing header), InternetReadFile,
 * options, then an upload in pieces with HttpSendRequestEx,
 * InternetWriteFile and HttpEndRequest. Usage: wininet_sync PORT */
#include <windows.h>
#include <wininet.h>
#include "check.h"

static DWORD g_seen[4];

/* Context 0 silences a handle: the callback must never see it. */
static void CALLBACK callback(HINTERNET h, DWORD_PTR context, DWORD status, LPVOID info,
                              DWORD length)
{
    (void)h;
    (void)status;
    (void)info;
    (void)length;
    CHECK(context != 0 && context < 4);
    g_seen[context]++;
}

static void read_all(HINTERNET req, char *out, DWORD cap)
{
    DWORD n = 0, total = 0;
    for (;;) {
        CHECK(InternetReadFile(req, out + total, cap - 1 - total, &n));
        if (n == 0) break;
        total += n;
    }
    out[total] = 0;
}

int main(int argc, char **argv)
{
    HINTERNET session, connect, req;
    DWORD code = 0, size, type = 0, written = 0;
    char text[512], body[512];
    INTERNET_BUFFERSA in;

    CHECK(argc == 2);
    session = InternetOpenA("sync", INTERNET_OPEN_TYPE_DIRECT, NULL, NULL, 0);
    CHECK(session != NULL);
    InternetSetStatusCallbackA(session, callback);
    connect = InternetConnectA(session, "127.0.0.1", (INTERNET_PORT)atoi(argv[1]), NULL, NULL,
                               INTERNET_SERVICE_HTTP, 0, 1);
    CHECK(connect != NULL);
    /* Options set on a handle are copied by the handles made under it. */
    code = 1234;
    CHECK(InternetSetOptionA(connect, INTERNET_OPTION_RECEIVE_TIMEOUT, &code, sizeof code));
    req = HttpOpenRequestA(connect, "POST", "/echo", NULL, NULL, NULL, INTERNET_FLAG_RELOAD, 2);
    CHECK(req != NULL);
    size = sizeof code;
    CHECK(InternetQueryOptionA(req, INTERNET_OPTION_RECEIVE_TIMEOUT, &code, &size));
    CHECK_EQ(code, 1234);
    CHECK(InternetQueryOptionA(session, INTERNET_OPTION_RECEIVE_TIMEOUT, &code, &size));
    CHECK_EQ(code, 30000); /* the default, as WinInet's */
    code = 5000;
    CHECK(InternetSetOptionA(req, INTERNET_OPTION_RECEIVE_TIMEOUT, &code, sizeof code));
    CHECK(InternetQueryOptionA(req, INTERNET_OPTION_RECEIVE_TIMEOUT, &code, &size));
    CHECK_EQ(code, 5000);
    size = sizeof type;
    CHECK(InternetQueryOptionA(req, INTERNET_OPTION_HANDLE_TYPE, &type, &size));
    CHECK_EQ(type, INTERNET_HANDLE_TYPE_HTTP_REQUEST);
    CHECK(HttpSendRequestA(req, "X-Test: yes\r\n", (DWORD)-1, "hello body", 10));

    size = sizeof code;
    CHECK(HttpQueryInfoA(req, HTTP_QUERY_STATUS_CODE | HTTP_QUERY_FLAG_NUMBER, &code, &size, NULL));
    CHECK_EQ(code, 200);
    strcpy(text, "X-Echo");
    size = sizeof text;
    CHECK(HttpQueryInfoA(req, HTTP_QUERY_CUSTOM, text, &size, NULL));
    CHECK(strcmp(text, "yes") == 0);
    CHECK_EQ(size, 3);
    size = 2;
    CHECK(!HttpQueryInfoA(req, HTTP_QUERY_STATUS_TEXT, text, &size, NULL));
    CHECK_EQ(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
    CHECK_EQ(size, 3); /* "OK" and its NUL */
    strcpy(text, "X-Missing");
    size = sizeof text;
    CHECK(!HttpQueryInfoA(req, HTTP_QUERY_CUSTOM, text, &size, NULL));
    CHECK_EQ(GetLastError(), ERROR_HTTP_HEADER_NOT_FOUND);
    size = sizeof text;
    CHECK(HttpQueryInfoA(req, HTTP_QUERY_RAW_HEADERS_CRLF, text, &size, NULL));
    CHECK(strncmp(text, "HTTP/1.1 200 OK\r\n", 17) == 0);
    size = sizeof text;
    CHECK(InternetQueryOptionA(req, INTERNET_OPTION_URL, text, &size));
    CHECK(strstr(text, "/echo") != NULL);
    read_all(req, body, sizeof body);
    CHECK(strcmp(body, "hello body") == 0);
    CHECK(InternetCloseHandle(req));
    CHECK(g_seen[2] >= 8); /* created, connect, send, receive, closing... */

    /* The same exchange with context 0: no notification at all. */
    req = HttpOpenRequestA(connect, "POST", "/echo", NULL, NULL, NULL, 0, 0);
    CHECK(req != NULL);
    CHECK(HttpSendRequestA(req, NULL, 0, "quiet", 5));
    read_all(req, body, sizeof body);
    CHECK(strcmp(body, "quiet") == 0);
    CHECK(InternetCloseHandle(req));

    /* An upload in pieces. */
    req = HttpOpenRequestA(connect, "PUT", "/echo", NULL, NULL, NULL, 0, 3);
    CHECK(req != NULL);
    ZeroMemory(&in, sizeof in);
    in.dwStructSize = sizeof in;
    in.dwBufferTotal = 8;
    CHECK(HttpSendRequestExA(req, &in, NULL, 0, 0));
    CHECK(InternetWriteFile(req, "abcd", 4, &written) && written == 4);
    CHECK(InternetWriteFile(req, "efgh", 4, &written) && written == 4);
    CHECK(HttpEndRequestA(req, NULL, 0, 0));
    size = sizeof code;
    CHECK(HttpQueryInfoA(req, HTTP_QUERY_STATUS_CODE | HTTP_QUERY_FLAG_NUMBER, &code, &size, NULL));
    CHECK_EQ(code, 200);
    read_all(req, body, sizeof body);
    CHECK(strcmp(body, "abcdefgh") == 0);

    /* Closing the session closes what is under it. */
    CHECK(InternetCloseHandle(session));
    CHECK(!InternetCloseHandle(req));
    CHECK_EQ(GetLastError(), ERROR_INVALID_HANDLE);
    CHECK(!InternetCloseHandle(connect));
    printf("OK wininet_sync\n");
    return 0;
}
