/*
 * http.h for httpq-capi: the HTTP Server API (httpapi.dll) version 1 and 2
 * types, constants and functions, served by httpq's request queues.
 * Stands on its own: it includes this directory's windows.h.
 * What is supported and what differs from Windows: docs/C-API.md.
 */
#ifndef HTTPQ_HTTP_H
#define HTTPQ_HTTP_H

#include "windows.h"
#include <sys/socket.h>
#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Addresses are the platform's own sockaddr (AF_INET6 differs from Windows). */
typedef struct sockaddr SOCKADDR, *PSOCKADDR, *LPSOCKADDR;
typedef struct sockaddr_in SOCKADDR_IN, *PSOCKADDR_IN;
typedef struct sockaddr_in6 SOCKADDR_IN6, *PSOCKADDR_IN6;

#define HTTP_INITIALIZE_SERVER 0x00000001u
#define HTTP_INITIALIZE_CONFIG 0x00000002u

typedef ULONGLONG HTTP_OPAQUE_ID, *PHTTP_OPAQUE_ID;
typedef HTTP_OPAQUE_ID HTTP_REQUEST_ID, *PHTTP_REQUEST_ID;
typedef HTTP_OPAQUE_ID HTTP_CONNECTION_ID, *PHTTP_CONNECTION_ID;
typedef HTTP_OPAQUE_ID HTTP_RAW_CONNECTION_ID, *PHTTP_RAW_CONNECTION_ID;
typedef HTTP_OPAQUE_ID HTTP_URL_GROUP_ID, *PHTTP_URL_GROUP_ID;
typedef HTTP_OPAQUE_ID HTTP_SERVER_SESSION_ID, *PHTTP_SERVER_SESSION_ID;
typedef ULONGLONG HTTP_URL_CONTEXT;

#define HTTP_NULL_ID (0ull)
#define HTTP_IS_NULL_ID(pid) (HTTP_NULL_ID == *(pid))
#define HTTP_SET_NULL_ID(pid) (*(pid) = HTTP_NULL_ID)
#define HTTP_BYTE_RANGE_TO_EOF ((ULONGLONG)-1)

typedef struct _HTTPAPI_VERSION {
    USHORT HttpApiMajorVersion;
    USHORT HttpApiMinorVersion;
} HTTPAPI_VERSION, *PHTTPAPI_VERSION;
#define HTTPAPI_VERSION_1 {1, 0}
#define HTTPAPI_VERSION_2 {2, 0}
#define HTTPAPI_EQUAL_VERSION(version, major, minor) \
    ((version).HttpApiMajorVersion == (major) && (version).HttpApiMinorVersion == (minor))

/* ---- flags ---- */
#define HTTP_URL_FLAG_REMOVE_ALL 0x00000001u
#define HTTP_CREATE_REQUEST_QUEUE_FLAG_OPEN_EXISTING 0x00000001u
#define HTTP_CREATE_REQUEST_QUEUE_FLAG_CONTROLLER 0x00000002u
#define HTTP_RECEIVE_REQUEST_FLAG_COPY_BODY 0x00000001u
#define HTTP_RECEIVE_REQUEST_FLAG_FLUSH_BODY 0x00000002u
#define HTTP_RECEIVE_REQUEST_ENTITY_BODY_FLAG_FILL_BUFFER 0x00000001u
#define HTTP_SEND_RESPONSE_FLAG_DISCONNECT 0x00000001u
#define HTTP_SEND_RESPONSE_FLAG_MORE_DATA 0x00000002u
#define HTTP_SEND_RESPONSE_FLAG_BUFFER_DATA 0x00000004u
#define HTTP_SEND_RESPONSE_FLAG_ENABLE_NAGLING 0x00000008u
#define HTTP_SEND_RESPONSE_FLAG_PROCESS_RANGES 0x00000020u
#define HTTP_SEND_RESPONSE_FLAG_OPAQUE 0x00000040u
#define HTTP_REQUEST_FLAG_MORE_ENTITY_BODY_EXISTS 0x00000001u
#define HTTP_REQUEST_FLAG_IP_ROUTED 0x00000002u
#define HTTP_REQUEST_FLAG_HTTP2 0x00000004u

/* ---- properties ---- */
typedef struct _HTTP_PROPERTY_FLAGS {
    ULONG Present : 1;
} HTTP_PROPERTY_FLAGS, *PHTTP_PROPERTY_FLAGS;

typedef enum _HTTP_SERVER_PROPERTY {
    HttpServerAuthenticationProperty = 0,
    HttpServerLoggingProperty = 1,
    HttpServerQosProperty = 2,
    HttpServerTimeoutsProperty = 3,
    HttpServerQueueLengthProperty = 4,
    HttpServerStateProperty = 5,
    HttpServer503VerbosityProperty = 6,
    HttpServerBindingProperty = 7,
    HttpServerExtendedAuthenticationProperty = 8,
    HttpServerListenEndpointProperty = 9,
    HttpServerChannelBindProperty = 10,
    HttpServerProtectionLevelProperty = 11
} HTTP_SERVER_PROPERTY, *PHTTP_SERVER_PROPERTY;
/* The name some documentation uses. */
#define Http503VerbosityProperty HttpServer503VerbosityProperty

typedef struct _HTTP_BINDING_INFO {
    HTTP_PROPERTY_FLAGS Flags;
    HANDLE RequestQueueHandle;
} HTTP_BINDING_INFO, *PHTTP_BINDING_INFO;

typedef struct _HTTP_TIMEOUT_LIMIT_INFO {
    HTTP_PROPERTY_FLAGS Flags;
    USHORT EntityBody;
    USHORT DrainEntityBody;
    USHORT RequestQueue;
    USHORT IdleConnection;
    USHORT HeaderWait;
    ULONG MinSendRate;
} HTTP_TIMEOUT_LIMIT_INFO, *PHTTP_TIMEOUT_LIMIT_INFO;

typedef enum _HTTP_503_RESPONSE_VERBOSITY {
    Http503ResponseVerbosityBasic = 0,
    Http503ResponseVerbosityLimited = 1,
    Http503ResponseVerbosityFull = 2
} HTTP_503_RESPONSE_VERBOSITY, *PHTTP_503_RESPONSE_VERBOSITY;

/* ---- requests ---- */
typedef struct _HTTP_VERSION {
    USHORT MajorVersion;
    USHORT MinorVersion;
} HTTP_VERSION, *PHTTP_VERSION;

typedef enum _HTTP_VERB {
    HttpVerbUnparsed = 0,
    HttpVerbUnknown = 1,
    HttpVerbInvalid = 2,
    HttpVerbOPTIONS = 3,
    HttpVerbGET = 4,
    HttpVerbHEAD = 5,
    HttpVerbPOST = 6,
    HttpVerbPUT = 7,
    HttpVerbDELETE = 8,
    HttpVerbTRACE = 9,
    HttpVerbCONNECT = 10,
    HttpVerbTRACK = 11,
    HttpVerbMOVE = 12,
    HttpVerbCOPY = 13,
    HttpVerbPROPFIND = 14,
    HttpVerbPROPPATCH = 15,
    HttpVerbMKCOL = 16,
    HttpVerbLOCK = 17,
    HttpVerbUNLOCK = 18,
    HttpVerbSEARCH = 19,
    HttpVerbMaximum = 20
} HTTP_VERB, *PHTTP_VERB;

typedef enum _HTTP_HEADER_ID {
    HttpHeaderCacheControl = 0,
    HttpHeaderConnection = 1,
    HttpHeaderDate = 2,
    HttpHeaderKeepAlive = 3,
    HttpHeaderPragma = 4,
    HttpHeaderTrailer = 5,
    HttpHeaderTransferEncoding = 6,
    HttpHeaderUpgrade = 7,
    HttpHeaderVia = 8,
    HttpHeaderWarning = 9,
    HttpHeaderAllow = 10,
    HttpHeaderContentLength = 11,
    HttpHeaderContentType = 12,
    HttpHeaderContentEncoding = 13,
    HttpHeaderContentLanguage = 14,
    HttpHeaderContentLocation = 15,
    HttpHeaderContentMd5 = 16,
    HttpHeaderContentRange = 17,
    HttpHeaderExpires = 18,
    HttpHeaderLastModified = 19,
    HttpHeaderAccept = 20,
    HttpHeaderAcceptCharset = 21,
    HttpHeaderAcceptEncoding = 22,
    HttpHeaderAcceptLanguage = 23,
    HttpHeaderAuthorization = 24,
    HttpHeaderCookie = 25,
    HttpHeaderExpect = 26,
    HttpHeaderFrom = 27,
    HttpHeaderHost = 28,
    HttpHeaderIfMatch = 29,
    HttpHeaderIfModifiedSince = 30,
    HttpHeaderIfNoneMatch = 31,
    HttpHeaderIfRange = 32,
    HttpHeaderIfUnmodifiedSince = 33,
    HttpHeaderMaxForwards = 34,
    HttpHeaderProxyAuthorization = 35,
    HttpHeaderReferer = 36,
    HttpHeaderRange = 37,
    HttpHeaderTe = 38,
    HttpHeaderTranslate = 39,
    HttpHeaderUserAgent = 40,
    HttpHeaderRequestMaximum = 41,
    HttpHeaderAcceptRanges = 20,
    HttpHeaderAge = 21,
    HttpHeaderEtag = 22,
    HttpHeaderLocation = 23,
    HttpHeaderProxyAuthenticate = 24,
    HttpHeaderRetryAfter = 25,
    HttpHeaderServer = 26,
    HttpHeaderSetCookie = 27,
    HttpHeaderVary = 28,
    HttpHeaderWwwAuthenticate = 29,
    HttpHeaderResponseMaximum = 30,
    HttpHeaderMaximum = 41
} HTTP_HEADER_ID, *PHTTP_HEADER_ID;

typedef struct _HTTP_KNOWN_HEADER {
    USHORT RawValueLength;
    PCSTR pRawValue;
} HTTP_KNOWN_HEADER, *PHTTP_KNOWN_HEADER;

typedef struct _HTTP_UNKNOWN_HEADER {
    USHORT NameLength;
    USHORT RawValueLength;
    PCSTR pName;
    PCSTR pRawValue;
} HTTP_UNKNOWN_HEADER, *PHTTP_UNKNOWN_HEADER;

typedef struct _HTTP_REQUEST_HEADERS {
    USHORT UnknownHeaderCount;
    PHTTP_UNKNOWN_HEADER pUnknownHeaders;
    USHORT TrailerCount;
    PHTTP_UNKNOWN_HEADER pTrailers;
    HTTP_KNOWN_HEADER KnownHeaders[HttpHeaderRequestMaximum];
} HTTP_REQUEST_HEADERS, *PHTTP_REQUEST_HEADERS;

typedef struct _HTTP_RESPONSE_HEADERS {
    USHORT UnknownHeaderCount;
    PHTTP_UNKNOWN_HEADER pUnknownHeaders;
    USHORT TrailerCount;
    PHTTP_UNKNOWN_HEADER pTrailers;
    HTTP_KNOWN_HEADER KnownHeaders[HttpHeaderResponseMaximum];
} HTTP_RESPONSE_HEADERS, *PHTTP_RESPONSE_HEADERS;

typedef struct _HTTP_COOKED_URL {
    USHORT FullUrlLength;     /* bytes, not counting the terminating NUL */
    USHORT HostLength;
    USHORT AbsPathLength;
    USHORT QueryStringLength;
    PCWSTR pFullUrl;
    PCWSTR pHost;             /* these three point into pFullUrl */
    PCWSTR pAbsPath;
    PCWSTR pQueryString;
} HTTP_COOKED_URL, *PHTTP_COOKED_URL;

typedef struct _HTTP_TRANSPORT_ADDRESS {
    PSOCKADDR pRemoteAddress;
    PSOCKADDR pLocalAddress;
} HTTP_TRANSPORT_ADDRESS, *PHTTP_TRANSPORT_ADDRESS;

typedef struct _HTTP_BYTE_RANGE {
    ULARGE_INTEGER StartingOffset;
    ULARGE_INTEGER Length;
} HTTP_BYTE_RANGE, *PHTTP_BYTE_RANGE;

typedef enum _HTTP_DATA_CHUNK_TYPE {
    HttpDataChunkFromMemory = 0,
    HttpDataChunkFromFileHandle = 1,
    HttpDataChunkFromFragmentCache = 2,
    HttpDataChunkFromFragmentCacheEx = 3,
    HttpDataChunkMaximum = 4
} HTTP_DATA_CHUNK_TYPE, *PHTTP_DATA_CHUNK_TYPE;

typedef struct _HTTP_DATA_CHUNK {
    HTTP_DATA_CHUNK_TYPE DataChunkType;
    union {
        struct {
            PVOID pBuffer;
            ULONG BufferLength;
        } FromMemory;
        struct {
            HTTP_BYTE_RANGE ByteRange;
            HANDLE FileHandle;
        } FromFileHandle;
        struct {
            USHORT FragmentNameLength;
            PCWSTR pFragmentName;
        } FromFragmentCache;
        struct {
            HTTP_BYTE_RANGE ByteRange;
            PCWSTR pFragmentName;
        } FromFragmentCacheEx;
    };
} HTTP_DATA_CHUNK, *PHTTP_DATA_CHUNK;

typedef struct _HTTP_SSL_INFO HTTP_SSL_INFO, *PHTTP_SSL_INFO; /* always NULL: no TLS yet */

typedef enum _HTTP_REQUEST_INFO_TYPE {
    HttpRequestInfoTypeAuth = 0
} HTTP_REQUEST_INFO_TYPE, *PHTTP_REQUEST_INFO_TYPE;

typedef struct _HTTP_REQUEST_INFO {
    HTTP_REQUEST_INFO_TYPE InfoType;
    ULONG InfoLength;
    PVOID pInfo;
} HTTP_REQUEST_INFO, *PHTTP_REQUEST_INFO;

#define HTTPQ_REQUEST_V1_FIELDS                 \
    ULONG Flags;                                \
    HTTP_CONNECTION_ID ConnectionId;            \
    HTTP_REQUEST_ID RequestId;                  \
    HTTP_URL_CONTEXT UrlContext;                \
    HTTP_VERSION Version;                       \
    HTTP_VERB Verb;                             \
    USHORT UnknownVerbLength;                   \
    USHORT RawUrlLength;                        \
    PCSTR pUnknownVerb;                         \
    PCSTR pRawUrl;                              \
    HTTP_COOKED_URL CookedUrl;                  \
    HTTP_TRANSPORT_ADDRESS Address;             \
    HTTP_REQUEST_HEADERS Headers;               \
    ULONGLONG BytesReceived;                    \
    USHORT EntityChunkCount;                    \
    PHTTP_DATA_CHUNK pEntityChunks;             \
    HTTP_RAW_CONNECTION_ID RawConnectionId;     \
    PHTTP_SSL_INFO pSslInfo;

typedef struct _HTTP_REQUEST_V1 {
    HTTPQ_REQUEST_V1_FIELDS
} HTTP_REQUEST_V1, *PHTTP_REQUEST_V1;

/* The V1 part is both r->Verb (Microsoft's samples) and r->s.Verb (Wine's
 * code): an anonymous union of an anonymous struct and a struct named s. */
typedef struct _HTTP_REQUEST_V2 {
    union {
        struct { HTTPQ_REQUEST_V1_FIELDS };
        HTTP_REQUEST_V1 s;
    };
    USHORT RequestInfoCount;
    PHTTP_REQUEST_INFO pRequestInfo;
} HTTP_REQUEST_V2, *PHTTP_REQUEST_V2;

typedef HTTP_REQUEST_V2 HTTP_REQUEST, *PHTTP_REQUEST;

/* ---- responses ---- */
typedef enum _HTTP_RESPONSE_INFO_TYPE {
    HttpResponseInfoTypeMultipleKnownHeaders = 0,
    HttpResponseInfoTypeAuthenticationProperty = 1,
    HttpResponseInfoTypeQoSProperty = 2,
    HttpResponseInfoTypeChannelBind = 3
} HTTP_RESPONSE_INFO_TYPE, *PHTTP_RESPONSE_INFO_TYPE;

typedef struct _HTTP_RESPONSE_INFO {
    HTTP_RESPONSE_INFO_TYPE Type;
    ULONG Length;
    PVOID pInfo;
} HTTP_RESPONSE_INFO, *PHTTP_RESPONSE_INFO;

#define HTTPQ_RESPONSE_V1_FIELDS                \
    ULONG Flags;                                \
    HTTP_VERSION Version;                       \
    USHORT StatusCode;                          \
    USHORT ReasonLength;                        \
    PCSTR pReason;                              \
    HTTP_RESPONSE_HEADERS Headers;              \
    USHORT EntityChunkCount;                    \
    PHTTP_DATA_CHUNK pEntityChunks;

typedef struct _HTTP_RESPONSE_V1 {
    HTTPQ_RESPONSE_V1_FIELDS
} HTTP_RESPONSE_V1, *PHTTP_RESPONSE_V1;

typedef struct _HTTP_RESPONSE_V2 {
    union {
        struct { HTTPQ_RESPONSE_V1_FIELDS };
        HTTP_RESPONSE_V1 s;
    };
    USHORT ResponseInfoCount;
    PHTTP_RESPONSE_INFO pResponseInfo;
} HTTP_RESPONSE_V2, *PHTTP_RESPONSE_V2;

typedef HTTP_RESPONSE_V2 HTTP_RESPONSE, *PHTTP_RESPONSE;

/* Accepted and ignored (httpq has no kernel response cache or W3C log). */
typedef enum _HTTP_CACHE_POLICY_TYPE {
    HttpCachePolicyNocache = 0,
    HttpCachePolicyUserInvalidates = 1,
    HttpCachePolicyTimeToLive = 2,
    HttpCachePolicyMaximum = 3
} HTTP_CACHE_POLICY_TYPE, *PHTTP_CACHE_POLICY_TYPE;

typedef struct _HTTP_CACHE_POLICY {
    HTTP_CACHE_POLICY_TYPE Policy;
    ULONG SecondsToLive;
} HTTP_CACHE_POLICY, *PHTTP_CACHE_POLICY;

typedef enum _HTTP_LOG_DATA_TYPE {
    HttpLogDataTypeFields = 0
} HTTP_LOG_DATA_TYPE, *PHTTP_LOG_DATA_TYPE;

typedef struct _HTTP_LOG_DATA {
    HTTP_LOG_DATA_TYPE Type;
} HTTP_LOG_DATA, *PHTTP_LOG_DATA;

/* ---- functions: each returns a Win32 error code ---- */
ULONG WINAPI HttpInitialize(HTTPAPI_VERSION Version, ULONG Flags, PVOID pReserved);
ULONG WINAPI HttpTerminate(ULONG Flags, PVOID pReserved);

ULONG WINAPI HttpCreateHttpHandle(PHANDLE RequestQueueHandle, ULONG Reserved);
ULONG WINAPI HttpAddUrl(HANDLE RequestQueueHandle, PCWSTR FullyQualifiedUrl, PVOID Reserved);
ULONG WINAPI HttpRemoveUrl(HANDLE RequestQueueHandle, PCWSTR FullyQualifiedUrl);

ULONG WINAPI HttpCreateServerSession(HTTPAPI_VERSION Version,
                                     PHTTP_SERVER_SESSION_ID ServerSessionId, ULONG Reserved);
ULONG WINAPI HttpCloseServerSession(HTTP_SERVER_SESSION_ID ServerSessionId);
ULONG WINAPI HttpCreateUrlGroup(HTTP_SERVER_SESSION_ID ServerSessionId,
                                PHTTP_URL_GROUP_ID pUrlGroupId, ULONG Reserved);
ULONG WINAPI HttpCloseUrlGroup(HTTP_URL_GROUP_ID UrlGroupId);
ULONG WINAPI HttpAddUrlToUrlGroup(HTTP_URL_GROUP_ID UrlGroupId, PCWSTR pFullyQualifiedUrl,
                                  HTTP_URL_CONTEXT UrlContext, ULONG Reserved);
ULONG WINAPI HttpRemoveUrlFromUrlGroup(HTTP_URL_GROUP_ID UrlGroupId, PCWSTR pFullyQualifiedUrl,
                                       ULONG Flags);

ULONG WINAPI HttpCreateRequestQueue(HTTPAPI_VERSION Version, PCWSTR Name,
                                    PSECURITY_ATTRIBUTES SecurityAttributes, ULONG Flags,
                                    PHANDLE RequestQueueHandle);
ULONG WINAPI HttpCloseRequestQueue(HANDLE RequestQueueHandle);
ULONG WINAPI HttpShutdownRequestQueue(HANDLE RequestQueueHandle);

ULONG WINAPI HttpSetUrlGroupProperty(HTTP_URL_GROUP_ID UrlGroupId, HTTP_SERVER_PROPERTY Property,
                                     PVOID PropertyInformation, ULONG PropertyInformationLength);
ULONG WINAPI HttpSetServerSessionProperty(HTTP_SERVER_SESSION_ID ServerSessionId,
                                          HTTP_SERVER_PROPERTY Property,
                                          PVOID PropertyInformation,
                                          ULONG PropertyInformationLength);
ULONG WINAPI HttpSetRequestQueueProperty(HANDLE RequestQueueHandle, HTTP_SERVER_PROPERTY Property,
                                         PVOID PropertyInformation,
                                         ULONG PropertyInformationLength, ULONG Reserved1,
                                         PVOID Reserved2);

ULONG WINAPI HttpReceiveHttpRequest(HANDLE RequestQueueHandle, HTTP_REQUEST_ID RequestId,
                                    ULONG Flags, PHTTP_REQUEST RequestBuffer,
                                    ULONG RequestBufferLength, PULONG BytesReturned,
                                    LPOVERLAPPED Overlapped);
ULONG WINAPI HttpReceiveRequestEntityBody(HANDLE RequestQueueHandle, HTTP_REQUEST_ID RequestId,
                                          ULONG Flags, PVOID EntityBuffer,
                                          ULONG EntityBufferLength, PULONG BytesReturned,
                                          LPOVERLAPPED Overlapped);
ULONG WINAPI HttpSendHttpResponse(HANDLE RequestQueueHandle, HTTP_REQUEST_ID RequestId,
                                  ULONG Flags, PHTTP_RESPONSE HttpResponse,
                                  PHTTP_CACHE_POLICY CachePolicy, PULONG BytesSent,
                                  PVOID Reserved1, ULONG Reserved2, LPOVERLAPPED Overlapped,
                                  PHTTP_LOG_DATA LogData);
ULONG WINAPI HttpSendResponseEntityBody(HANDLE RequestQueueHandle, HTTP_REQUEST_ID RequestId,
                                        ULONG Flags, USHORT EntityChunkCount,
                                        PHTTP_DATA_CHUNK EntityChunks, PULONG BytesSent,
                                        PVOID Reserved1, ULONG Reserved2,
                                        LPOVERLAPPED Overlapped, PHTTP_LOG_DATA LogData);
ULONG WINAPI HttpWaitForDisconnect(HANDLE RequestQueueHandle, HTTP_CONNECTION_ID ConnectionId,
                                   LPOVERLAPPED Overlapped);
ULONG WINAPI HttpWaitForDisconnectEx(HANDLE RequestQueueHandle, HTTP_CONNECTION_ID ConnectionId,
                                     ULONG Reserved, LPOVERLAPPED Overlapped);
ULONG WINAPI HttpCancelHttpRequest(HANDLE RequestQueueHandle, HTTP_REQUEST_ID RequestId,
                                   LPOVERLAPPED Overlapped);

#ifdef __cplusplus
}
#endif
#endif /* HTTPQ_HTTP_H */
