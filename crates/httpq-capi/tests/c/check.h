/* Assertions for the C test programs: a failed check prints where and
 * what, and the program exits 1 (the Rust test then fails with the output). */
#ifndef HTTPQ_TEST_CHECK_H
#define HTTPQ_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
            fflush(stdout);                                                 \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

#define CHECK_EQ(a, b)                                                      \
    do {                                                                    \
        unsigned long long a_ = (unsigned long long)(a);                    \
        unsigned long long b_ = (unsigned long long)(b);                    \
        if (a_ != b_) {                                                     \
            printf("FAILED %s:%d: %s == %s (%llu != %llu)\n", __FILE__,     \
                   __LINE__, #a, #b, a_, b_);                               \
            fflush(stdout);                                                 \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

/* A UTF-16 string of (ptr, bytes) as ASCII, '?' for the rest. */
static inline void narrow(char *out, size_t cap, const unsigned short *w, size_t bytes)
{
    size_t n = bytes / 2, i;
    if (n >= cap) n = cap - 1;
    for (i = 0; i < n; i++) out[i] = w[i] < 128 ? (char)w[i] : '?';
    out[n] = 0;
}


/* ASCII to a NUL-terminated UTF-16 string (glibc's wide printf assumes a
 * 32-bit wchar_t, so programs built with -fshort-wchar build URLs by hand). */
static inline void widen(unsigned short *out, const char *in)
{
    while ((*out++ = (unsigned char)*in++) != 0) {
    }
}
/* Checking these programs against mingw-w64's http.h (valid Windows C):
 * it predates a flag and a function the Windows SDK has. */
#if defined(HTTP_INITIALIZE_SERVER) && !defined(HTTPQ_HTTP_H)
#ifndef HTTP_RECEIVE_REQUEST_FLAG_FLUSH_BODY
#define HTTP_RECEIVE_REQUEST_FLAG_FLUSH_BODY 0x00000002
#endif
#ifndef HTTP_URL_FLAG_REMOVE_ALL
#define HTTP_URL_FLAG_REMOVE_ALL 0x00000001
#endif
#ifndef HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING
#define HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING 0x00000001
#endif
ULONG WINAPI HttpWaitForDisconnectEx(HANDLE RequestQueueHandle, HTTP_CONNECTION_ID ConnectionId,
                                     ULONG Reserved, LPOVERLAPPED Overlapped);
#endif
#endif
