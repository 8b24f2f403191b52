/* The Win32 plumbing of windows.h, without the network: last error per
 * thread, events and waits, completion ports, threads, clocks, files. */
#include <windows.h>
#include "check.h"

static HANDLE g_port, g_pool_done;
static ULONG g_pool_result;
static ULONG_PTR g_pool_bytes;
static PVOID g_pool_overlapped, g_pool_context;

static VOID CALLBACK pool_callback(PTP_CALLBACK_INSTANCE instance, PVOID context, PVOID overlapped,
                                   ULONG result, ULONG_PTR bytes, PTP_IO io)
{
    (void)instance;
    (void)io;
    g_pool_context = context;
    g_pool_overlapped = overlapped;
    g_pool_result = result;
    g_pool_bytes = bytes;
    SetEvent(g_pool_done);
}

static HANDLE g_closing_port;
static DWORD g_closed_wait_error;

/* Waits on a port that main closes: the wait must end. */
static DWORD WINAPI port_waiter(LPVOID param)
{
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED ov = NULL;
    (void)param;
    CHECK(!GetQueuedCompletionStatus(g_closing_port, &bytes, &key, &ov, INFINITE));
    g_closed_wait_error = GetLastError();
    return 0;
}

static DWORD WINAPI worker(LPVOID param)
{
    /* The last error is per thread: this one does not see main's. */
    CHECK_EQ(GetLastError(), 0);
    SetLastError(1234);
    PostQueuedCompletionStatus(g_port, 42, (ULONG_PTR)param, NULL);
    CHECK_EQ(GetLastError(), 1234);
    return 7;
}

int main(void)
{
    DWORD bytes = 0, tid = 0, n = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED ov = NULL;
    LARGE_INTEGER f, c1, c2, size;
    char path[MAX_PATH], dir[MAX_PATH], buf[64];
    HANDLE ev, th, file;
    ULONGLONG t0;
    OVERLAPPED o;

    /* The process heap. */
    {
        unsigned char *mem = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, 64);
        CHECK(mem != NULL && mem[0] == 0 && mem[63] == 0);
        mem = HeapReAlloc(GetProcessHeap(), 0, mem, 4096);
        CHECK(mem != NULL && mem[63] == 0);
        CHECK(HeapFree(GetProcessHeap(), 0, mem));
    }

    /* Errors. */
    SetLastError(ERROR_MORE_DATA);
    CHECK_EQ(GetLastError(), ERROR_MORE_DATA);
    CHECK(!CloseHandle((HANDLE)(ULONG_PTR)0x12340));
    CHECK_EQ(GetLastError(), ERROR_INVALID_HANDLE);

    /* Events: manual stays set, auto releases one wait; timeouts. */
    ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    CHECK(ev != NULL);
    CHECK_EQ(WaitForSingleObject(ev, 0), WAIT_TIMEOUT);
    t0 = GetTickCount64();
    CHECK_EQ(WaitForSingleObject(ev, 50), WAIT_TIMEOUT);
    CHECK(GetTickCount64() - t0 >= 45);
    CHECK(SetEvent(ev));
    CHECK_EQ(WaitForSingleObject(ev, INFINITE), WAIT_OBJECT_0);
    CHECK_EQ(WaitForSingleObject(ev, 0), WAIT_OBJECT_0);
    CHECK(ResetEvent(ev));
    CHECK_EQ(WaitForSingleObject(ev, 0), WAIT_TIMEOUT);
    CHECK(CloseHandle(ev));
    ev = CreateEventW(NULL, FALSE, TRUE, NULL);
    CHECK_EQ(WaitForSingleObject(ev, 0), WAIT_OBJECT_0);
    CHECK_EQ(WaitForSingleObject(ev, 0), WAIT_TIMEOUT);
    CHECK(CloseHandle(ev));

    /* A completion port: timeout, then a packet from another thread. */
    g_port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0);
    CHECK(g_port != NULL);
    CHECK(!GetQueuedCompletionStatus(g_port, &bytes, &key, &ov, 10));
    CHECK_EQ(GetLastError(), WAIT_TIMEOUT);
    CHECK(ov == NULL);
    SetLastError(0);
    th = CreateThread(NULL, 0, worker, (LPVOID)(ULONG_PTR)99, 0, &tid);
    CHECK(th != NULL);
    CHECK(tid != 0 && tid != GetCurrentThreadId());
    CHECK(GetQueuedCompletionStatus(g_port, &bytes, &key, &ov, INFINITE));
    CHECK_EQ(bytes, 42);
    CHECK_EQ(key, 99);
    CHECK(ov == NULL);
    CHECK_EQ(WaitForSingleObject(th, INFINITE), WAIT_OBJECT_0);
    CHECK(CloseHandle(th));

    /* Clocks. */
    CHECK(QueryPerformanceFrequency(&f) && f.QuadPart > 0);
    CHECK(QueryPerformanceCounter(&c1));
    Sleep(20);
    CHECK(QueryPerformanceCounter(&c2));
    CHECK((c2.QuadPart - c1.QuadPart) * 1000 / f.QuadPart >= 19);
    CHECK(GetTickCount() != 0 || GetTickCount64() != 0);

    /* Files: a temporary name, write, read back, overlapped read at an
     * offset with its packet on the port, size, delete. */
    n = GetTempPathA(sizeof dir, dir);
    CHECK(n > 0 && n < sizeof dir);
    CHECK(GetTempFileNameA(dir, "hq", 0, path) != 0);
    file = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                       FILE_ATTRIBUTE_NORMAL, NULL);
    CHECK(file != INVALID_HANDLE_VALUE);
    CHECK(WriteFile(file, "hello, file", 11, &n, NULL));
    CHECK_EQ(n, 11);
    CHECK(GetFileSizeEx(file, &size));
    CHECK_EQ(size.QuadPart, 11);
    CHECK(CreateIoCompletionPort(file, g_port, 5, 0) == g_port);
    ZeroMemory(&o, sizeof o);
    o.Offset = 7;
    CHECK(ReadFile(file, buf, sizeof buf, &n, &o));
    CHECK_EQ(n, 4);
    CHECK(HasOverlappedIoCompleted(&o));
    CHECK(memcmp(buf, "file", 4) == 0);
    CHECK(GetOverlappedResult(file, &o, &n, FALSE));
    CHECK_EQ(n, 4);
    /* An operation that completes at once still posts its packet. */
    CHECK(GetQueuedCompletionStatus(g_port, &bytes, &key, &ov, 1000));
    CHECK(ov == &o);
    CHECK_EQ(key, 5);
    CHECK_EQ(bytes, 4);
    /* Reading past the end with an OVERLAPPED is ERROR_HANDLE_EOF, at once:
     * a failure queues no packet. */
    o.Offset = 100;
    CHECK(!ReadFile(file, buf, sizeof buf, &n, &o));
    CHECK_EQ(GetLastError(), ERROR_HANDLE_EOF);
    CHECK(!GetQueuedCompletionStatus(g_port, &bytes, &key, &ov, 100));
    CHECK_EQ(GetLastError(), WAIT_TIMEOUT);
    CHECK(CloseHandle(file));

    /* Thread-pool I/O: a completion calls back on a pool thread instead. */
    file = CreateFileA(path, GENERIC_READ, 0, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    CHECK(file != INVALID_HANDLE_VALUE);
    g_pool_done = CreateEventA(NULL, FALSE, FALSE, NULL);
    {
        PTP_IO io = CreateThreadpoolIo(file, pool_callback, &o, NULL);
        CHECK(io != NULL);
        StartThreadpoolIo(io);
        ZeroMemory(&o, sizeof o);
        o.Offset = 0;
        CHECK(ReadFile(file, buf, 5, &n, &o));
        CHECK_EQ(WaitForSingleObject(g_pool_done, 10000), WAIT_OBJECT_0);
        CHECK(g_pool_overlapped == &o && g_pool_context == &o);
        CHECK_EQ(g_pool_result, NO_ERROR);
        CHECK_EQ(g_pool_bytes, 5);
        CHECK(memcmp(buf, "hello", 5) == 0);
        WaitForThreadpoolIoCallbacks(io, FALSE);
        CloseThreadpoolIo(io);
    }
    CHECK(CloseHandle(g_pool_done));
    CHECK(CloseHandle(file));
    CHECK(DeleteFileA(path));
    CHECK(!DeleteFileA(path));
    CHECK_EQ(GetLastError(), ERROR_FILE_NOT_FOUND);
    file = CreateFileW(L"/nonexistent-dir/x", GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
    CHECK(file == INVALID_HANDLE_VALUE);
    CHECK(GetLastError() == ERROR_PATH_NOT_FOUND || GetLastError() == ERROR_FILE_NOT_FOUND);
    CHECK(CloseHandle(g_port));

    /* Closing a port ends the waits on it (ERROR_ABANDONED_WAIT_0; or the
     * handle is already invalid if the close came first). */
    g_closing_port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0);
    th = CreateThread(NULL, 0, port_waiter, NULL, 0, NULL);
    CHECK(th != NULL);
    CHECK(CloseHandle(g_closing_port));
    CHECK_EQ(WaitForSingleObject(th, 10000), WAIT_OBJECT_0);
    CHECK(g_closed_wait_error == 735 || g_closed_wait_error == ERROR_INVALID_HANDLE);
    CHECK(CloseHandle(th));
    printf("OK win32_basics\n");
    return 0;
}
