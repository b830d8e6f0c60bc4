/*
 * libFuzzer: the validators every untrusted name goes through (queue,
 * task name, function, URL, client id) and the INFO reply check a client
 * runs on connect; an accepted name must also key-format.
 */
#include <stdint.h>
#include <stdlib.h>

#include "dq_contract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dq_str_t         s = { (const char *) data, size };
    dq_server_info_t info;
    char             key[DQ_KEY_MAX];

    if (dq_queue_name_valid(s)
        && dq_key_format(key, sizeof(key), s, DQ_KEY_NAMES) == 0)
    {
        abort();
    }
    (void) dq_task_name_valid(s);
    (void) dq_func_name_valid(s);
    (void) dq_url_valid(s);
    (void) dq_client_id_valid(s);
    (void) dq_server_info((const char *) data, size, &info);
    return 0;
}
