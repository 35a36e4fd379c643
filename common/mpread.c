/* Strict msgpack cursor (see mpread.h): what is not inline there. */
#include "mpread.h"

#include <assert.h>

void tkv_mpr_init(struct tkv_mpr *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->why = TKV_MPR_NONE;
    r->want = 0;
    r->have = 0;
}

/* Type of each type byte: a table, so that tkv__mpr_type_of() costs one
 * load on every item. */
/* clang-format off */
#define U_ TKV_MP_UINT
#define N_ TKV_MP_NINT
#define M_ TKV_MP_MAP
#define A_ TKV_MP_ARRAY
#define S_ TKV_MP_STR
#define B_ TKV_MP_BIN
#define E_ TKV_MP_EXT
#define F_ TKV_MP_FLOAT
#define I_ TKV__MP_SIGNED
const uint8_t tkv__mp_types[256] = {
    U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, /* 0x00 */
    U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_,
    U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_,
    U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_,
    U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_,
    U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_,
    U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_,
    U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_, U_,
    M_, M_, M_, M_, M_, M_, M_, M_, M_, M_, M_, M_, M_, M_, M_, M_, /* 0x80 */
    A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, /* 0x90 */
    S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, /* 0xa0 */
    S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_,
    TKV_MP_NIL, TKV_MP_BAD, TKV_MP_BOOL, TKV_MP_BOOL,               /* 0xc0 */
    B_, B_, B_, E_, E_, E_, F_, F_, U_, U_, U_, U_,
    I_, I_, I_, I_, E_, E_, E_, E_, E_, S_, S_, S_, A_, A_, M_, M_, /* 0xd0 */
    N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, /* 0xe0 */
    N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_,
};
#undef U_
#undef N_
#undef M_
#undef A_
#undef S_
#undef B_
#undef E_
#undef F_
#undef I_
/* clang-format on */

/* Both skippers. Items still to read are counted per open container when
 * the depth is limited; without a limit one counter serves them all. */
static int skip(struct tkv_mpr *r,
                int limited,
                unsigned max_depth,
                size_t *start,
                size_t *end)
{
    uint64_t left[TKV_MPR_DEPTH_MAX + 1];
    size_t begin = r->off;
    unsigned depth = 0;

    assert(!limited || max_depth <= TKV_MPR_DEPTH_MAX);
    left[0] = 1;
    for (;;) {
        struct tkv_mp_item it = {0};
        uint64_t items;
        int rv;

        while (left[depth] == 0) {
            if (depth == 0) {
                if (start != NULL) {
                    *start = begin;
                }
                if (end != NULL) {
                    *end = r->off;
                }
                return 0;
            }
            depth--;
        }
        left[depth]--;
        rv = tkv_mpr_next(r, &it);
        if (rv == 0 && (it.type == TKV_MP_ARRAY || it.type == TKV_MP_MAP)) {
            items =
                it.type == TKV_MP_MAP ? 2 * (uint64_t)it.v.count : it.v.count;
            if (limited && depth == max_depth) {
                rv = tkv__mpr_fail(r, TKV_MPR_DEPTH, 0, 0);
            } else if (tkv__mpr_backed(r, it.type, it.v.count,
                                       r->len - r->off) != 0) {
                rv = TKV_ECORRUPT;
            } else if (limited) {
                if (items > 0) {
                    left[++depth] = items;
                }
            } else if (items > UINT64_MAX - left[0]) {
                /* only past 4 GB of input: each count is backed */
                rv = tkv__mpr_fail(r, TKV_MPR_COUNT, it.v.count,
                                   r->len - r->off);
            } else {
                left[0] += items;
            }
        }
        if (rv != 0) {
            r->off = begin;
            return TKV_ECORRUPT;
        }
    }
}

int tkv_mpr_skip(struct tkv_mpr *r, size_t *start, size_t *end)
{
    return skip(r, 0, 0, start, end);
}

int tkv_mpr_skip_depth(struct tkv_mpr *r,
                       unsigned max_depth,
                       size_t *start,
                       size_t *end)
{
    return skip(r, 1, max_depth, start, end);
}
