/*
 * Sharded queues, the contract's part (lib/dq_shard.c, dq_contract.h
 * "shards"): shard names, the shard of a task name (FNV-1a 32: the
 * published test vectors, so producers in any language can agree), the
 * split of a whole-queue limit, the stored N, keys and commands of a
 * shard. No Redis.
 */
#include <stdio.h>
#include <string.h>

#include "dq_contract.h"
#include "tap.h"

int
main(void)
{
    char     buf[DQ_SHARD_NAME_MAX + 1], key[DQ_KEY_MAX], name[32], q[160];
    unsigned i, n, counts[8] = { 0 };
    int64_t  sum, m, lo, hi, v;
    dq_cmd_t c;

    /* names */
    ok(dq_shard_name_valid(dq_str_lit("hot")), "a queue name is a shard name");
    ok(dq_shard_name_valid(dq_str_lit("hot#1")), "hot#1");
    ok(dq_shard_name_valid(dq_str_lit("hot#63")), "hot#63 (the last)");
    ok(!dq_shard_name_valid(dq_str_lit("hot#64")), "hot#64 refused");
    ok(!dq_shard_name_valid(dq_str_lit("hot#0")), "hot#0 refused: shard 0 is hot");
    ok(!dq_shard_name_valid(dq_str_lit("hot#01")), "leading zero refused");
    ok(!dq_shard_name_valid(dq_str_lit("hot#")), "no number refused");
    ok(!dq_shard_name_valid(dq_str_lit("#1")), "no queue refused");
    ok(!dq_shard_name_valid(dq_str_lit("hot#1#2")), "two '#' refused");
    ok(!dq_shard_name_valid(dq_str_lit("hot#1a")), "hot#1a refused");
    ok(!dq_shard_name_valid(dq_str_c(NULL)), "NULL refused");
    ok(!dq_queue_name_valid(dq_str_lit("hot#1")),
       "a user's queue name may not hold '#'");
    memset(q, 'q', 100);
    memcpy(q + 100, "#63", 4);
    ok(dq_shard_name_valid(dq_str_c(q)), "a 100-byte queue's shard 63");

    is_int((int) dq_shard_name(buf, sizeof(buf), dq_str_lit("hot"), 0), 3,
           "shard 0 of hot: hot");
    is_str(buf, "hot", "... named hot");
    dq_shard_name(buf, sizeof(buf), dq_str_lit("hot"), 5);
    is_str(buf, "hot#5", "shard 5: hot#5");
    dq_shard_name(buf, sizeof(buf), dq_str_lit("hot"), 42);
    is_str(buf, "hot#42", "shard 42: hot#42");
    is_int((int) dq_shard_name(buf, sizeof(buf), dq_str_lit("hot"), 64), 0,
           "shard 64: none");
    is_int((int) dq_shard_name(buf, 5, dq_str_lit("hot"), 12), 0,
           "too small a buffer: 0");
    is_int((int) dq_shard_name(buf, sizeof(buf), dq_str_lit("a#1"), 1), 0,
           "the shard of a shard: none");
    {
        dq_str_t b = dq_shard_base(dq_str_lit("hot#42"));

        ok(b.len == 3 && memcmp(b.ptr, "hot", 3) == 0,
           "the base of hot#42: hot");
        b = dq_shard_base(dq_str_lit("hot"));
        ok(b.len == 3 && memcmp(b.ptr, "hot", 3) == 0,
           "the base of hot (shard 0): hot");
    }
    q[100] = '\0';
    is_int((int) dq_shard_name(buf, sizeof(buf), dq_str_c(q), 63), 103,
           "the longest shard name fits DQ_SHARD_NAME_MAX");

    /* FNV-1a 32 (the published vectors) mod n */
    is_int((int) dq_shard_of(dq_str_lit("a"), 1000), 0xe40c292cU % 1000,
           "FNV-1a(\"a\") = 0xe40c292c");
    is_int((int) dq_shard_of(dq_str_lit("foobar"), 7), 0xbf9cf968U % 7,
           "FNV-1a(\"foobar\") = 0xbf9cf968");
    is_int((int) dq_shard_of(dq_str_lit("order-1234"), 4), 2,
           "order-1234 over 4 shards: 2");
    is_int((int) dq_shard_of(dq_str_lit("anything"), 1), 0, "n 1: shard 0");
    is_int((int) dq_shard_of(dq_str_lit("anything"), 0), 0, "n 0: shard 0");
    for (i = 0; i < 8000; i++) {
        snprintf(name, sizeof(name), "task-%u", i);
        counts[dq_shard_of(dq_str_c(name), 8)]++;
    }
    lo = hi = counts[0];
    for (i = 1; i < 8; i++) {
        lo = counts[i] < lo ? counts[i] : lo;
        hi = counts[i] > hi ? counts[i] : hi;
    }
    ok(lo >= 900 && hi <= 1100, "8000 names over 8 shards: %lld..%lld each",
       (long long) lo, (long long) hi);

    /* limit shares: sum exactly, differ by at most 1 */
    for (m = 1; m <= 100; m++) {
        for (n = 1; n <= 64; n++) {
            sum = 0;
            lo = INT64_MAX;
            hi = 0;
            for (i = 0; i < n; i++) {
                v = dq_shard_share(m, n, i);
                sum += v;
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            if (sum != m || hi - lo > 1) {
                break;
            }
        }
        if (n <= 64) {
            break;
        }
    }
    ok(m > 100, "every M in 1..100 over 1..64 shards: shares sum to M, "
       "differ by at most 1");
    is_int((int) dq_shard_share(5, 3, 0), 2, "5 over 3: 2,");
    is_int((int) dq_shard_share(5, 3, 1), 2, "2,");
    is_int((int) dq_shard_share(5, 3, 2), 1, "1");

    /* the stored N */
    is_int((int) dq_shards_parse("4", 1), 4, "\"4\": 4");
    is_int((int) dq_shards_parse("64", 2), 64, "\"64\": 64");
    is_int((int) dq_shards_parse("65", 2), 1, "\"65\": 1 (out of range)");
    is_int((int) dq_shards_parse("0", 1), 1, "\"0\": 1");
    is_int((int) dq_shards_parse("-1", 2), 1, "\"-1\": 1");
    is_int((int) dq_shards_parse("x", 1), 1, "\"x\": 1");
    is_int((int) dq_shards_parse(NULL, 0), 1, "absent: 1");

    /* keys and commands of a shard */
    is_int((int) dq_key_format(key, sizeof(key), dq_str_lit("hot#3"),
                               DQ_KEY_ETA), 15, "the key of a shard");
    is_str(key, "dq2:{hot#3}:eta", "... dq2:{hot#3}:eta (its own slot)");
    is_int((int) dq_key_format(key, sizeof(key), dq_str_lit("hot#64"),
                               DQ_KEY_ETA), 0, "no key for hot#64");
    dq_cmd_init(&c);
    is_int(dq_cmd_shards(&c, dq_str_lit("hot")), DQ_OK, "dq_cmd_shards");
    ok(c.argc == 3 && strcmp(c.argv[0], "HGET") == 0
       && strcmp(c.argv[1], "dq2:{hot}:conf") == 0
       && strcmp(c.argv[2], "shards") == 0,
       "... HGET dq2:{hot}:conf shards");
    is_int(dq_cmd_shards(&c, dq_str_lit("hot#1")), DQ_EINVAL,
           "... N is read from a queue, never from a shard");
    {
        dq_enqueue_item_t it;

        memset(&it, 0, sizeof(it));
        it.id = dq_str_lit("id1");
        it.envelope = dq_str_lit("x");
        it.eta_ms = -1;
        it.countdown_ms = -1;
        is_int(dq_cmd_enqueue(&c, dq_str_lit("hot#2"), &it, 1, 1000), DQ_OK,
               "an enqueue into shard 2");
        ok(c.argc > 4 && strcmp(c.argv[3], "dq2:{hot#2}:tasks") == 0,
           "... its keys are the shard's (%s)", c.argc > 4 ? c.argv[3] : "");
    }
    dq_cmd_free(&c);
    {
        /* configure.lua's own copy of the limit (review R4 finding 7) */
        const dq_script_t *sc = dq_script(DQ_SCRIPT_CONFIGURE);
        char               want[64];

        snprintf(want, sizeof(want), "local DQ_MAX_SHARDS = %d\n",
                 DQ_MAX_SHARDS);
        ok(strstr(sc->source, want) != NULL, "configure.lua's "
           "DQ_MAX_SHARDS is lib/dq_contract.h's (%d)", DQ_MAX_SHARDS);
    }
    /* a failed read of the count: nginx's and the C client's one rule */
    {
        unsigned n;
        int      g;

        n = 4, g = 0;
        is_int((int) dq_shards_unread(&n, &g, 0), DQ_SHARDS_RETRY_MS,
               "unread, 4 known: read again in DQ_SHARDS_RETRY_MS");
        ok(n == 4 && g == 0, "unread, 4 known: 4 kept, not a guess");
        n = 0, g = 0;
        is_int((int) dq_shards_unread(&n, &g, 0), DQ_SHARDS_TTL_MS,
               "unread, never read: again in DQ_SHARDS_TTL_MS");
        ok(n == 1 && g == 1, "unread, never read: 1, guessed");
        n = 1, g = 1;
        (void) dq_shards_unread(&n, &g, 0);
        ok(n == 1 && g == 1, "unread again after a guess: still a guess");
        n = 4, g = 0;
        (void) dq_shards_unread(&n, &g, DQ_SHARDS_KEEP_MS);
        ok(n == 4 && g == 0, "unread, 4 read DQ_SHARDS_KEEP_MS ago: kept");
        n = 4, g = 0;
        is_int((int) dq_shards_unread(&n, &g, DQ_SHARDS_KEEP_MS + 1),
               DQ_SHARDS_TTL_MS, "unread, 4 read longer ago: again in "
               "DQ_SHARDS_TTL_MS");
        ok(n == 1 && g == 1, "unread, 4 read longer ago than "
           "DQ_SHARDS_KEEP_MS: not kept, 1 guessed (review RM finding 5)");
        ok(dq_shards_may_place(0, 1) && dq_shards_may_place(0, 0)
           && dq_shards_may_place(1, 0) && !dq_shards_may_place(1, 1),
           "a guessed count places only tasks neither named nor keyed");
    }
    return done_testing();
}
