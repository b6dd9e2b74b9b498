/* The control API's OpenAPI document (docs/openapi.yaml), embedded at build
 * time by docs/embed.sh; control.c serves it at GET /v1/openapi.yaml. */
#ifndef RECONCILED_OPENAPI_H
#define RECONCILED_OPENAPI_H
#include <stddef.h>
extern const unsigned char openapi_yaml[];
extern const size_t openapi_yaml_len;
#endif
