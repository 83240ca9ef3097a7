/* redact.h - keeping secrets out of logs, errors and help: which keys hold
 * secrets, and URLs with their password masked. */
#ifndef SL_REDACT_H
#define SL_REDACT_H

#include <stddef.h>

/* Is `key` a librdkafka property or option whose value must never be printed
 * (sasl.password, ssl.key.password, *secret*, *password*, ...)? */
int sl_redact_key_is_secret(const char *key);

/* Copies url into out with any "user:password@" password replaced by "***". */
void sl_redact_url(const char *url, char *out, size_t out_size);

#endif
