/* Protocol abuse against a live cluster: truncated frames, oversized
 * frames, random bytes, unknown ops, wrong argument types, 1000 idle
 * connections. Each gets an error reply or a close; the node stays up
 * and keeps serving correctly. */
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static struct tkv_tc cluster;
static int leader;

static int setup(void **state)
{
    static const char *const flags[] = {"--max-connections", "300",
                                        "--election-timeout-ms", "600", NULL};
    *state = &cluster; /* for tkv_tc_teardown */
    assert_int_equal(tkv_tc_init(&cluster, "abuse", 21500, 3, flags), 0);
    assert_int_equal(tkv_tc_start_all(&cluster, TKV_TC_BOOTSTRAP), 0);
    leader = hc_wait_leader(&cluster, 20000);
    return leader == 0 ? -1 : 0;
}

/* The node still answers a fresh client correctly. */
static void check_healthy(void)
{
    struct tkv_probe p;
    static int n;
    char key[64];
    tkv_probe_init(&p);
    snprintf(key, sizeof key, "[\"health\",%d]", n++);
    assert_int_equal(hc_set(&cluster, &p, leader, key, "1", 0), 0);
    assert_int_equal(hc_get(&cluster, &p, leader, key, 0), 1);
    tkv_probe_close(&p);
    assert_true(cluster.nodes[leader].pid > 0);
}

/* Send raw bytes; expect an error reply with `code` (0: any error), then,
 * if must_close, the connection closed. */
static void send_expect(const void *bytes, size_t len, int code, int must_close)
{
    struct tkv_probe p;
    struct tkv_reply rep;
    struct tkv_err err;
    int rv;

    tkv_probe_init(&p);
    tkv_reply_init(&rep);
    assert_int_equal(
        tkv_probe_connect(&p, cluster.nodes[leader].client, 2000, &err), 0);
    assert_int_equal(tkv_probe_send_raw(&p, bytes, len, 2000, &err), 0);
    rv = tkv_probe_recv(&p, &rep, 5000, &err);
    assert_int_equal(rv, 0);
    assert_int_not_equal(rep.code, 0);
    if (code != 0) {
        assert_int_equal(rep.code, code);
    }
    if (must_close) {
        rv = tkv_probe_recv(&p, &rep, 5000, &err);
        assert_int_equal(rv, TKV_EUNAVAILABLE);
    }
    tkv_reply_close(&rep);
    tkv_probe_close(&p);
}

static void frame(struct tkv_buf *out, const void *payload, size_t len)
{
    uint8_t hdr[4];
    tkv_frame_put_len(hdr, (uint32_t)len);
    tkv_buf_append(out, hdr, 4);
    tkv_buf_append(out, payload, len);
}

static void test_oversized_frame(void **state)
{
    uint8_t hdr[4];
    (void)state;
    tkv_frame_put_len(hdr, TKV_FRAME_MAX + 1);
    send_expect(hdr, 4, TKV_ETOO_LARGE, 1);
    check_healthy();
}

static void test_truncated_frames(void **state)
{
    struct tkv_probe p;
    struct tkv_err err;
    uint8_t buf[14] = {0, 0, 0, 100, 0x82, 0xa2, 'i', 'd', 1};
    int i;
    (void)state;
    /* A header promising more than is ever sent, then a close: the node
     * must drop the half frame quietly. Also a lone partial header. */
    for (i = 0; i < 20; i++) {
        tkv_probe_init(&p);
        assert_int_equal(
            tkv_probe_connect(&p, cluster.nodes[leader].client, 2000, &err), 0);
        assert_int_equal(
            tkv_probe_send_raw(&p, buf, (size_t)(i % 2 ? 9 : 2), 2000, &err),
            0);
        tkv_probe_close(&p);
    }
    check_healthy();
}

static void test_garbage(void **state)
{
    struct tkv_buf b;
    uint8_t junk[512];
    int round;
    (void)state;
    srand(1234);
    for (round = 0; round < 50; round++) {
        size_t i, n = 1 + (size_t)rand() % sizeof junk;
        for (i = 0; i < n; i++) {
            junk[i] = (uint8_t)rand();
        }
        tkv_buf_init(&b);
        frame(&b, junk, n);
        send_expect(b.data, b.len, 0, 0);
        tkv_buf_close(&b);
    }
    /* not a map: PROTO and close */
    tkv_buf_init(&b);
    frame(&b, "\x93\x01\x02\x03", 4);
    send_expect(b.data, b.len, TKV_EPROTO, 1);
    tkv_buf_close(&b);
    check_healthy();
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void test_unknown_op_and_bad_args(void **state)
{
    struct tkv_buf b, one;
    msgpack_packer pk;
    struct tkv_probe p;
    struct tkv_reply rep;
    struct tkv_err err;
    int i;
    (void)state;

    tkv_buf_init(&b);
    /* {id: 5, op: "frobnicate"} */
    tkv_buf_init(&one);
    msgpack_packer_init(&pk, &one, tkv_buf_msgpack_write);
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "id");
    msgpack_pack_uint64(&pk, 5);
    pack_str(&pk, "op");
    pack_str(&pk, "frobnicate");
    frame(&b, one.data, one.len);
    /* {id: 6, op: "get", key: 42} */
    tkv_buf_reset(&one);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "id");
    msgpack_pack_uint64(&pk, 6);
    pack_str(&pk, "op");
    pack_str(&pk, "get");
    pack_str(&pk, "key");
    msgpack_pack_int(&pk, 42);
    frame(&b, one.data, one.len);
    /* {id: 7, op: "set", key: ["a"], value: "not bin"} */
    tkv_buf_reset(&one);
    msgpack_pack_map(&pk, 4);
    pack_str(&pk, "id");
    msgpack_pack_uint64(&pk, 7);
    pack_str(&pk, "op");
    pack_str(&pk, "set");
    pack_str(&pk, "key");
    msgpack_pack_array(&pk, 1);
    pack_str(&pk, "a");
    pack_str(&pk, "value");
    pack_str(&pk, "not bin");
    frame(&b, one.data, one.len);
    /* {id: 8, op: "status"}: still served on the same connection */
    tkv_buf_reset(&one);
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "id");
    msgpack_pack_uint64(&pk, 8);
    pack_str(&pk, "op");
    pack_str(&pk, "status");
    frame(&b, one.data, one.len);

    tkv_probe_init(&p);
    tkv_reply_init(&rep);
    assert_int_equal(
        tkv_probe_connect(&p, cluster.nodes[leader].client, 2000, &err), 0);
    p.pend_id[8] = 8;
    p.pend_op[8] = TKV_OP_STATUS;
    assert_int_equal(tkv_probe_send_raw(&p, b.data, b.len, 2000, &err), 0);
    for (i = 5; i <= 8; i++) {
        assert_int_equal(tkv_probe_recv(&p, &rep, 5000, &err), 0);
        assert_int_equal(rep.id, (uint64_t)i);
        if (i < 8) {
            assert_int_equal(rep.code, TKV_EINVALID);
        } else {
            assert_int_equal(rep.code, 0);
            assert_string_equal(rep.status.role, "leader");
        }
    }
    tkv_reply_close(&rep);
    tkv_probe_close(&p);
    tkv_buf_close(&one);
    tkv_buf_close(&b);
    check_healthy();
}

static void test_idle_connections(void **state)
{
    static struct tkv_probe conns[1000];
    struct tkv_reply rep;
    struct tkv_err err;
    int i, refused = 0, open = 0;
    (void)state;

    tkv_reply_init(&rep);
    for (i = 0; i < 1000; i++) {
        tkv_probe_init(&conns[i]);
        if (tkv_probe_connect(&conns[i], cluster.nodes[leader].client, 5000,
                              &err) == 0) {
            open++;
        }
    }
    assert_int_equal(open, 1000);
    /* Over the limit (300): BUSY then closed. Under it: idle, silent.
     * Give the node time to answer every refused one, then look. */
    tkv_tc_sleep_ms(2000);
    for (i = 0; i < 1000; i++) {
        int rv = tkv_probe_recv(&conns[i], &rep, 1, &err);
        if (rv == 0) {
            assert_int_equal(rep.code, TKV_EBUSY);
            refused++;
        } else {
            assert_int_equal(rv, TKV_ETIMEOUT);
        }
    }
    fprintf(stderr, "%d of 1000 idle connections refused\n", refused);
    assert_true(refused >= 690 && refused <= 710);
    for (i = 0; i < 1000; i++) {
        tkv_probe_close(&conns[i]);
    }
    tkv_reply_close(&rep);
    tkv_tc_sleep_ms(200);
    check_healthy();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oversized_frame),
        cmocka_unit_test(test_truncated_frames),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_unknown_op_and_bad_args),
        cmocka_unit_test(test_idle_connections),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, setup, tkv_tc_teardown));
}
