/* With UNICODE defined, the generic names are the W forms and TCHAR is
 * WCHAR, as in the SDK: this program only compiles cleanly if they are. */
#define UNICODE
#define _UNICODE
#include <windows.h>
#include <wininet.h>
#include "check.h"

int main(void)
{
    TCHAR dir[MAX_PATH], path[MAX_PATH];
    LPCWSTR agent = TEXT("unicode-agent");
    HANDLE file, ev;
    HINTERNET session;
    DWORD n = 0;

    CHECK_EQ(sizeof(TCHAR), 2);
    CHECK(GetTempPath(MAX_PATH, dir) > 0);
    CHECK(GetTempFileName(dir, TEXT("uni"), 0, path) != 0);
    file = CreateFile(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    CHECK(file != INVALID_HANDLE_VALUE);
    CHECK(WriteFile(file, "w", 1, &n, NULL) && n == 1);
    CHECK(CloseHandle(file));
    CHECK(DeleteFile(path));
    ev = CreateEvent(NULL, TRUE, FALSE, NULL);
    CHECK(ev != NULL && CloseHandle(ev));
    session = InternetOpen(agent, INTERNET_OPEN_TYPE_DIRECT, NULL, NULL, 0);
    CHECK(session != NULL);
    CHECK(InternetCloseHandle(session));
    printf("OK unicode\n");
    return 0;
}
