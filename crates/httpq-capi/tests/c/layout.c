/* Prints the size and field offsets of the structs the library reads and
 * writes, for the Rust test to compare with its own repr(C) mirrors. */
#include <http.h>
#include <stdio.h>

#define OFF(T, f) printf(#T "." #f " %zu\n", offsetof(T, f))
#define SIZE(T) printf(#T " %zu\n", sizeof(T))

int main(void)
{
    SIZE(OVERLAPPED);
    OFF(OVERLAPPED, InternalHigh);
    OFF(OVERLAPPED, Offset);
    OFF(OVERLAPPED, hEvent);
    SIZE(HTTP_REQUEST_V1);
    SIZE(HTTP_REQUEST_V2);
    OFF(HTTP_REQUEST_V1, ConnectionId);
    OFF(HTTP_REQUEST_V1, Verb);
    OFF(HTTP_REQUEST_V1, pRawUrl);
    OFF(HTTP_REQUEST_V1, CookedUrl);
    OFF(HTTP_REQUEST_V1, Address);
    OFF(HTTP_REQUEST_V1, Headers);
    OFF(HTTP_REQUEST_V1, BytesReceived);
    OFF(HTTP_REQUEST_V1, EntityChunkCount);
    OFF(HTTP_REQUEST_V1, pEntityChunks);
    OFF(HTTP_REQUEST_V1, RawConnectionId);
    OFF(HTTP_REQUEST_V1, pSslInfo);
    OFF(HTTP_REQUEST_V2, RequestInfoCount);
    OFF(HTTP_REQUEST_V2, pRequestInfo);
    SIZE(HTTP_REQUEST_HEADERS);
    SIZE(HTTP_COOKED_URL);
    SIZE(HTTP_DATA_CHUNK);
    SIZE(HTTP_UNKNOWN_HEADER);
    SIZE(HTTP_RESPONSE_V1);
    OFF(HTTP_RESPONSE_V1, Headers);
    OFF(HTTP_RESPONSE_V1, EntityChunkCount);
    OFF(HTTP_RESPONSE_V1, pEntityChunks);
    SIZE(HTTP_TIMEOUT_LIMIT_INFO);
    OFF(HTTP_TIMEOUT_LIMIT_INFO, MinSendRate);
    SIZE(HTTP_BINDING_INFO);
    printf("OK layout\n");
    return 0;
}
