/* redact.c - secret keys and URL passwords. */

#include "redact.h"

#include <stdio.h>
#include <string.h>

int sl_redact_key_is_secret(const char *key) {
    static const char *needles[] = {"password",    "secret",  "sasl.oauthbearer.config",
                                    "ssl.key.pem", "ssl_key", "token"};
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++)
        if (strcasestr(key, needles[i]))
            return 1;
    return 0;
}

void sl_redact_url(const char *url, char *out, size_t out_size) {
    const char *scheme = strstr(url, "://");
    const char *start = scheme ? scheme + 3 : url;
    const char *at = strchr(start, '@');
    const char *slash = strchr(start, '/');
    if (!at || (slash && slash < at)) {
        snprintf(out, out_size, "%s", url);
        return;
    }
    const char *colon = memchr(start, ':', (size_t)(at - start));
    if (!colon) { /* user only, no password */
        snprintf(out, out_size, "%s", url);
        return;
    }
    snprintf(out, out_size, "%.*s:***%s", (int)(colon - url), url, at);
}
