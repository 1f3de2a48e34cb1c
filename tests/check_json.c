/* SPDX-License-Identifier: MIT */
/* check_json.c -- the JSON parser: trees as cJSON builds them, numbers, errors and their bytes. */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_same.h"
#include "utf8.h"

/* Documents both parsers must read to the same tree. */
static const char *const same_as_cjson[] = {
    "{}",
    "[]",
    "0",
    "-0",
    "\"\"",
    "true",
    "false",
    "null",
    " \t\r\n{ \"a\" : [ 1 , 2.5 , -3e2 , true , false , null , { } , [ ] ] } \n",
    "{\"message_type\":\"email_received\",\"from\":\"ann@example.com\",\"n\":1714557600}",
    "{\"a\":{\"a\":{\"a\":1}},\"b\":[{\"a\":1},{\"a\":2}]}",
    "{\"a\":1,\"a\":2}",
    "[1,[2,[3,[4,[5]]]]]",
    "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
    "\"\\u0041\\u00e9\\u00E9\\u20ac\\ud83d\\ude00\\uFFFF\\u0001\"",
    "\"José 日本 😀 \xC2\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF\"",
    "\"plain text long enough to take the eight-byte path more than once over\"",
    "\"escape at the end\\n\"",
    "\"\\nescape at the start\"",
    "[0.1,0.5,1.5e-3,1E+3,1e-3,-1.25,123456789012345,1234567890123456,12345678901234567890]",
    "[2147483647,2147483648,-2147483648,-2147483649,3e10,-3e10,1e999,-1e999,1e-999]",
    "[9007199254740993,0.30000000000000004,4.9406564584124654e-324]",
    "\xEF\xBB\xBF{\"bom\":true}",
};

START_TEST(trees_match_cjson)
{
    const char *text = same_as_cjson[_i];
    size_t len = strlen(text);
    struct pool pool = {0};
    struct json_error err;
    char why[256] = "";

    cJSON *ours = json_parse(text, len, JSON_DEPTH_LIMIT, pool_alloc, &pool, &err);
    ck_assert_msg(ours != NULL, "%s: error %d at %zu", text, err.kind, err.at);
    ck_assert_int_eq(err.kind, JSON_OK);

    cJSON *theirs = cJSON_ParseWithLength(text, len);
    ck_assert_ptr_nonnull(theirs);
    ck_assert_msg(json_same(ours, theirs, why, sizeof(why)), "%s: %s", text, why);
    cJSON_Delete(theirs);
    pool_free(&pool);
}
END_TEST

/* Parse text as one number and return it; fails the test if it is not read as one. */
static const cJSON *number(struct pool *pool, const char *text)
{
    struct json_error err;
    const cJSON *n = json_parse(text, strlen(text), 8, pool_alloc, pool, &err);

    ck_assert_msg(n != NULL && cJSON_IsNumber(n), "%s: error %d", text, err.kind);
    return n;
}

START_TEST(numbers)
{
    struct pool pool = {0};

    ck_assert(signbit(number(&pool, "-0")->valuedouble));
    ck_assert(!signbit(number(&pool, "0")->valuedouble));
    ck_assert(number(&pool, "123456789012345")->valuedouble == 123456789012345.0);
    ck_assert(number(&pool, "-999999999999999")->valuedouble == -999999999999999.0);
    ck_assert(number(&pool, "9007199254740993")->valuedouble == 9007199254740992.0);
    ck_assert(number(&pool, "0.1")->valuedouble == 0.1);
    ck_assert(number(&pool, "1714557600.5")->valuedouble == 1714557600.5);
    ck_assert(isinf(number(&pool, "1e999")->valuedouble));
    ck_assert(number(&pool, "1e-999")->valuedouble == 0.0);
    ck_assert_int_eq(number(&pool, "42")->valueint, 42);
    ck_assert_int_eq(number(&pool, "-7.9")->valueint, -7);
    ck_assert_int_eq(number(&pool, "3e10")->valueint, INT_MAX);
    ck_assert_int_eq(number(&pool, "-3e10")->valueint, INT_MIN);
    ck_assert_int_eq(number(&pool, "1e999")->valueint, INT_MAX);

    /* Longer than any stack copy: read through a copy in the pool. */
    char longer[200];
    memset(longer, '1', sizeof(longer) - 1);
    longer[0] = '0';
    longer[1] = '.';
    longer[sizeof(longer) - 1] = '\0';
    ck_assert(fabs(number(&pool, longer)->valuedouble - 0.1111111111111111) < 1e-15);
    pool_free(&pool);
}
END_TEST

struct bad {
    const char *text;
    size_t len; /* 0: strlen(text) */
    int max_depth;
    enum json_error_kind kind;
    size_t at;
};

static const struct bad bad[] = {
    /* The grammar of numbers. */
    {"[01]", 0, 8, JSON_SYNTAX, 2},
    {"[1.]", 0, 8, JSON_SYNTAX, 3},
    {"[.5]", 0, 8, JSON_SYNTAX, 1},
    {"[+1]", 0, 8, JSON_SYNTAX, 1},
    {"[-]", 0, 8, JSON_SYNTAX, 2},
    {"[-a]", 0, 8, JSON_SYNTAX, 2},
    {"[1e]", 0, 8, JSON_SYNTAX, 3},
    {"[1e+]", 0, 8, JSON_SYNTAX, 4},
    {"[0x10]", 0, 8, JSON_SYNTAX, 2},
    {"[NaN]", 0, 8, JSON_SYNTAX, 1},
    {"[Infinity]", 0, 8, JSON_SYNTAX, 1},
    {"-", 0, 8, JSON_SYNTAX, 0},
    /* Literals and structure. */
    {"[tru]", 0, 8, JSON_SYNTAX, 1},
    {"[nul", 0, 8, JSON_SYNTAX, 1},
    {"[True]", 0, 8, JSON_SYNTAX, 1},
    {"[1 2]", 0, 8, JSON_SYNTAX, 3},
    {"[1,]", 0, 8, JSON_SYNTAX, 3},
    {"[,1]", 0, 8, JSON_SYNTAX, 1},
    {"{\"a\":1 \"b\":2}", 0, 8, JSON_SYNTAX, 7},
    {"{\"a\"}", 0, 8, JSON_SYNTAX, 4},
    {"{1:2}", 0, 8, JSON_SYNTAX, 1},
    {"[1}", 0, 8, JSON_SYNTAX, 2},
    {"{\"a\":1]", 0, 8, JSON_SYNTAX, 6},
    {"", 0, 8, JSON_SYNTAX, 0},
    {"\xEF\xBB\xBF", 0, 8, JSON_SYNTAX, 2},
    {"[\x0B]", 0, 8, JSON_SYNTAX, 1},
    {"[1]x", 0, 8, JSON_TRAILING, 3},
    {"[1] [2]", 0, 8, JSON_TRAILING, 4},
    {"[1]\0", 4, 8, JSON_TRAILING, 3},
    /* Strings. */
    {"\"abc", 0, 8, JSON_SYNTAX, 3},
    {"\"abc\\", 0, 8, JSON_SYNTAX, 4},
    {"\"abc\\\"", 0, 8, JSON_SYNTAX, 5},
    {"\"\\x\"", 0, 8, JSON_SYNTAX, 2},
    {"\"\\U0041\"", 0, 8, JSON_SYNTAX, 2},
    {"\"\\u00g0\"", 0, 8, JSON_SYNTAX, 1},
    {"\"\\u004\"", 0, 8, JSON_SYNTAX, 1},
    {"\"\\ud83d\"", 0, 8, JSON_SYNTAX, 1},
    {"\"\\ud83dx\"", 0, 8, JSON_SYNTAX, 1},
    {"\"\\ud83d\\u0041\"", 0, 8, JSON_SYNTAX, 1},
    {"\"\\ud83d\\ud83d\"", 0, 8, JSON_SYNTAX, 1},
    {"\"\\ude00\"", 0, 8, JSON_SYNTAX, 1},
    {"\"a\\u0000\"", 0, 8, JSON_NUL, 2},
    {"\"a\\\x01\"", 0, 8, JSON_CONTROL, 3},
    {"\"a\x7F\x1F\"", 0, 8, JSON_CONTROL, 3},
    {"\"ab\0\"", 5, 8, JSON_CONTROL, 3},
    {"\"\xC3\"", 0, 8, JSON_UTF8, 1},
    {"\"ok\\n\xE0\x80\xAF\"", 0, 8, JSON_UTF8, 5},
    {"\"\xF0\x9F\x98", 0, 8, JSON_UTF8, 1},
    {"[\xFF]", 0, 8, JSON_UTF8, 1},
    {"[\xC3\xA9]", 0, 8, JSON_SYNTAX, 1},
    /* Depth: the bracket that went one level too deep. */
    {"[[[]]]", 0, 2, JSON_DEPTH, 2},
    {"{\"a\":{\"b\":[]}}", 0, 2, JSON_DEPTH, 10},
    {"[[]]", 0, 0, JSON_DEPTH, 0},
};

START_TEST(errors_name_kind_and_byte)
{
    const struct bad *b = &bad[_i];
    size_t len = b->len ? b->len : strlen(b->text);
    struct pool pool = {0};
    struct json_error err;

    ck_assert_ptr_null(json_parse(b->text, len, b->max_depth, pool_alloc, &pool, &err));
    ck_assert_msg(err.kind == b->kind && err.at == b->at,
                  "case %d: error %d at %zu, want %d at %zu", _i, err.kind, err.at, b->kind, b->at);
    pool_free(&pool);
}
END_TEST

START_TEST(depth_is_capped)
{
    static char text[2 * (JSON_DEPTH_LIMIT + 1)];
    struct pool pool = {0};
    struct json_error err;

    memset(text, '[', JSON_DEPTH_LIMIT);
    memset(text + JSON_DEPTH_LIMIT, ']', JSON_DEPTH_LIMIT);
    ck_assert_ptr_nonnull(json_parse(text, 2 * JSON_DEPTH_LIMIT, INT_MAX, pool_alloc, &pool, &err));
    pool_free(&pool);

    memset(text, '[', JSON_DEPTH_LIMIT + 1);
    memset(text + JSON_DEPTH_LIMIT + 1, ']', JSON_DEPTH_LIMIT + 1);
    ck_assert_ptr_null(json_parse(text, sizeof(text), INT_MAX, pool_alloc, &pool, &err));
    ck_assert_int_eq(err.kind, JSON_DEPTH);
    ck_assert_uint_eq(err.at, JSON_DEPTH_LIMIT);
    pool_free(&pool);
}
END_TEST

/* Every allocation in turn fails: each time the parse says so, and nothing leaks or crashes. */
START_TEST(allocation_failures)
{
    static const char text[] = "{\"a\":[1,\"two\",\"thr\\u00e9e\",{\"b\":null}],"
                               "\"c\":123456789012345678901234567890123456789012345678901234567890"
                               "1234567890}";
    size_t failures = 0;

    for (size_t from = 1;; from++) {
        struct pool pool = {.fail_from = from};
        struct json_error err;
        cJSON *root = json_parse(text, sizeof(text) - 1, 8, pool_alloc, &pool, &err);

        pool_free(&pool);
        if (root != NULL)
            break;
        ck_assert_int_eq(err.kind, JSON_NOMEM);
        failures++;
    }
    /* The text's copy (which holds the names and strings), 8 nodes, the long number's copy. */
    ck_assert_uint_eq(failures, 10);
}
END_TEST

START_TEST(utf8_lengths)
{
    static const struct {
        const char *s;
        size_t n;
    } cases[] = {
        {"a", 1},
        {"\xC2\x80", 2},
        {"\xDF\xBF", 2},
        {"\xE0\xA0\x80", 3},
        {"\xED\x9F\xBF", 3},
        {"\xF0\x90\x80\x80", 4},
        {"\xF4\x8F\xBF\xBF", 4},
        {"\xC1\xBF", 0},
        {"\xE0\x9F\xBF", 0},
        {"\xED\xA0\x80", 0},
        {"\xF0\x8F\xBF\xBF", 0},
        {"\xF4\x90\x80\x80", 0},
        {"\xF5\x80\x80\x80", 0},
        {"\x80", 0},
        {"\xC3", 0},
        {"\xE6\x97", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(utf8_len((const unsigned char *)cases[i].s, strlen(cases[i].s)) == cases[i].n,
                      "case %zu", i);
}
END_TEST

/* json_member() and json_is() answer as cJSON's lookup and type tests do. */
START_TEST(members_and_types)
{
    static const char text[] = "{\"ab\":1,\"a\":null,\"abc\":\"x\",\"a\":[true],\"\":{}}";
    static const char *const names[] = {"ab", "a", "abc", "", "b", "abcd"};
    struct pool pool = {0};
    struct json_error err;
    const cJSON *root = json_parse(text, strlen(text), 8, pool_alloc, &pool, &err);
    cJSON *theirs = cJSON_Parse(text);

    ck_assert_ptr_nonnull(root);
    ck_assert_ptr_nonnull(theirs);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const cJSON *ours = json_member(root, names[i]);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(theirs, names[i]);

        ck_assert_msg((ours == NULL) == (want == NULL), "%s: found %d", names[i], ours != NULL);
        if (ours != NULL)
            ck_assert_msg(ours->type == want->type, "%s: type %d, not %d", names[i], ours->type,
                          want->type);
    }
    /* The first of two members of one name: null, not the array. */
    ck_assert(json_is(json_member(root, "a"), cJSON_NULL));
    ck_assert_ptr_null(json_member(NULL, "a"));
    ck_assert_ptr_null(json_member(json_member(root, "ab"), "a"));
    ck_assert_ptr_null(json_member(json_member(root, "a")->next->next, "a")); /* an array */

    for (const cJSON *m = theirs->child; m != NULL; m = m->next) {
        ck_assert(json_is(m, cJSON_String) == cJSON_IsString(m));
        ck_assert(json_is(m, cJSON_Number) == cJSON_IsNumber(m));
        ck_assert(json_is(m, cJSON_NULL) == cJSON_IsNull(m));
        ck_assert(json_is(m, cJSON_Array) == cJSON_IsArray(m));
        ck_assert(json_is(m, cJSON_Object) == cJSON_IsObject(m));
        ck_assert(json_is(m->child, cJSON_True) == cJSON_IsTrue(m->child));
    }
    ck_assert(!json_is(NULL, cJSON_NULL));
    cJSON_Delete(theirs);
    pool_free(&pool);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, trees_match_cjson, 0,
                        (int)(sizeof(same_as_cjson) / sizeof(same_as_cjson[0])));
    tcase_add_test(tc, numbers);
    tcase_add_loop_test(tc, errors_name_kind_and_byte, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, depth_is_capped);
    tcase_add_test(tc, allocation_failures);
    tcase_add_test(tc, utf8_lengths);
    tcase_add_test(tc, members_and_types);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
