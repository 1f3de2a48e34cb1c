/* SPDX-License-Identifier: MIT */
/* check_identity.c -- unit tests for address and number normalisation and the ids. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"

#define US "+15550100123"
#define UK "+442079460000"
#define DE "+4915112345678"

#define X8  "xxxxxxxx"
#define X64 X8 X8 X8 X8 X8 X8 X8 X8

#define E_EMPTY   "e-mail address is empty"
#define E_NOAT    "e-mail address has no \"@\""
#define E_TWOAT   "e-mail address has more than one \"@\""
#define E_NOLOCAL "e-mail address has an empty local part"
#define E_LOCAL64 "e-mail local part is longer than 64 bytes"
#define E_NODOM   "e-mail address has an empty domain"
#define E_NODOT   "e-mail domain has no dot"
#define E_LABEL   "e-mail domain has an empty label"
#define E_DOMCHAR "e-mail domain has an invalid character"
#define E_CTRL    "e-mail address contains whitespace or a control character"
#define E_LONG    "e-mail address is longer than 254 bytes"
#define P_EMPTY   "phone number is empty"
#define P_CHAR    "phone number has an invalid character"
#define P_PLUS    "phone number has a \"+\" not at the start"
#define P_SHORT   "phone number has fewer than 8 digits"
#define P_LONG    "phone number has more than 15 digits"
#define P_ZERO    "phone number's country code starts with 0"

/* Replace each "<FILL>" in tmpl with n copies of unit; the result is malloc'd. */
static char *fill(const char *tmpl, const char *unit, size_t n)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    const char *p = tmpl, *mark;

    ck_assert_ptr_nonnull(f);
    while ((mark = strstr(p, "<FILL>")) != NULL) {
        fwrite(p, 1, (size_t)(mark - p), f);
        for (size_t i = 0; i < n; i++)
            fputs(unit, f);
        p = mark + strlen("<FILL>");
    }
    fputs(p, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_ptr_nonnull(buf);
    return buf;
}

/* A malloc'd copy of exactly len bytes, no NUL after them: reading past len is an ASan error. */
static char *exact(const char *s, size_t len)
{
    char *copy = malloc(len ? len : 1);

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, s, len);
    return copy;
}

struct norm_case {
    const char *name;
    char kind;             /* 'e': identity_email, 'p': identity_phone */
    const char *in;        /* a fill() template when nfill is set */
    size_t len;            /* 0: strlen(in) */
    size_t nfill;          /* copies of fill_unit for each "<FILL>" in in and want */
    const char *fill_unit; /* NULL: "x" */
    const char *cc;        /* NULL: "1" */
    const char *trunk;     /* NULL: "1" */
    const char *want;      /* the normalised form; NULL when an error is expected */
    const char *why;       /* the expected reason */
};

#define EMAIL(in, w)     .kind = 'e', in, .want = w
#define EMAIL_BAD(in, r) .kind = 'e', in, .why = r
#define PHONE(in, w)     .kind = 'p', in, .want = w
#define PHONE_BAD(in, r) .kind = 'p', in, .why = r
#define UK_NATIONAL      .cc = "44", .trunk = "0"
#define DE_NATIONAL      .cc = "49", .trunk = "0"
#define KB10             .nfill = 10240

static const struct norm_case cases[] = {
    /* E-mail: what is changed. */
    {"email: already canonical", EMAIL("ann@example.com", "ann@example.com")},
    {"email: upper-case", EMAIL("Ann.Lee@Example.COM", "ann.lee@example.com")},
    {"email: surrounding whitespace", EMAIL(" \t\r\n bo@example.org \r\n", "bo@example.org")},
    /*
     * Only ASCII letters are lower-cased: É (C3 89) stays as it is, so
     * "JOSÉ@x" and "josé@x" are different customers. Unicode case folding is
     * locale-dependent and the local part is case-sensitive by RFC 5321.
     */
    {"email: non-ASCII left as it is", EMAIL("JOSÉ@Example.com", "josÉ@example.com")},
    {"email: internationalised domain", EMAIL("Anna@Bücher.DE", "anna@bücher.de")},
    {"email: sub-address kept", EMAIL("ann+crm@example.com", "ann+crm@example.com")},
    {"email: hyphens and digits in the domain",
     EMAIL("a@mail-1.example.co.uk", "a@mail-1.example.co.uk")},
    {"email: local part of 64 bytes", EMAIL(X64 "@example.com", X64 "@example.com")},
    {"email: 254 bytes", .kind = 'e', "a@<FILL>co", .nfill = 25, .fill_unit = "abcdefghi.",
     .want = "a@<FILL>co"},

    /* E-mail: what is refused. */
    {"email: empty", EMAIL_BAD("", E_EMPTY)},
    {"email: only whitespace", EMAIL_BAD(" \t\r\n ", E_EMPTY)},
    {"email: no @", EMAIL_BAD("ann.example.com", E_NOAT)},
    {"email: two @", EMAIL_BAD("ann@b@example.com", E_TWOAT)},
    {"email: quoted local part with @", EMAIL_BAD("\"a@b\"@example.com", E_TWOAT)},
    {"email: empty local part", EMAIL_BAD("@example.com", E_NOLOCAL)},
    {"email: local part of 65 bytes", EMAIL_BAD(X64 "x@example.com", E_LOCAL64)},
    {"email: empty domain", EMAIL_BAD("ann@", E_NODOM)},
    {"email: domain without a dot", EMAIL_BAD("ann@localhost", E_NODOT)},
    {"email: leading dot in the domain", EMAIL_BAD("ann@.example.com", E_LABEL)},
    {"email: trailing dot in the domain", EMAIL_BAD("ann@example.com.", E_LABEL)},
    {"email: two dots in the domain", EMAIL_BAD("ann@example..com", E_LABEL)},
    {"email: domain is a dot", EMAIL_BAD("ann@.", E_LABEL)},
    {"email: underscore in the domain", EMAIL_BAD("ann@exa_mple.com", E_DOMCHAR)},
    {"email: bracketed IP literal", EMAIL_BAD("ann@[192.0.2.1]", E_DOMCHAR)},
    {"email: inner space", EMAIL_BAD("ann lee@example.com", E_CTRL)},
    {"email: inner tab", EMAIL_BAD("ann@example.\tcom", E_CTRL)},
    {"email: NUL inside", EMAIL_BAD("ann\0@example.com", E_CTRL), .len = 16},
    {"email: DEL inside", EMAIL_BAD("ann\x7F@example.com", E_CTRL)},
    {"email: vertical tab is not trimmed", EMAIL_BAD("\vann@example.com", E_CTRL)},
    {"email: 255 bytes", EMAIL_BAD("a@<FILL>com", E_LONG), .nfill = 25, .fill_unit = "abcdefghi."},
    {"email: 10 KB", EMAIL_BAD("<FILL>@example.com", E_LONG), KB10},
    {"email: 10 KB of whitespace", EMAIL_BAD("<FILL>", E_EMPTY), KB10, .fill_unit = " "},

    /* Phone: one US number written nine ways (country code 1, trunk prefix 1). */
    {"phone: parentheses and dash", PHONE("(555) 010-0123", US)},
    {"phone: dashes", PHONE("555-010-0123", US)},
    {"phone: dots", PHONE("555.010.0123", US)},
    {"phone: trunk prefix and spaces", PHONE("1 555 010 0123", US)},
    {"phone: + and dots", PHONE("+1.555.010.0123", US)},
    {"phone: + and parentheses", PHONE("+1 (555) 010-0123", US)},
    {"phone: 00 international prefix", PHONE("001 555 010 0123", US)},
    {"phone: surrounding spaces", PHONE("  5550100123  ", US)},
    {"phone: trunk prefix, no separators", PHONE("15550100123", US)},

    /* Phone: other separators, countries and prefixes. */
    {"phone: tabs and slash", PHONE("555\t010/0123", US)},
    {"phone: surrounding CR LF", PHONE("\r\n +1 555 010 0123 \r\n", US)},
    {"phone: + inside a parenthesis", PHONE("(+1) 555 010 0123", US)},
    {"phone: foreign number with +", PHONE("+44 20 7946 0000", UK)},
    {"phone: foreign number with 00", PHONE("0044 20 7946 0000", UK)},
    {"phone: national with trunk 0", PHONE("020 7946 0000", UK), UK_NATIONAL},
    {"phone: 00 wins over trunk 0", PHONE("0044 (0)20-7946-0000", "+4402079460000"), UK_NATIONAL},
    {"phone: German mobile", PHONE("0151/12345678", DE), DE_NATIONAL},
    {"phone: German mobile with 00", PHONE("00 49 151 1234 5678", DE), DE_NATIONAL},
    {"phone: empty trunk prefix keeps the 0", PHONE("06 1234 5678", "+390612345678"), .cc = "39",
     .trunk = ""},
    {"phone: trunk prefix absent", PHONE("555 010 0123", US), .cc = "1", .trunk = "0"},
    {"phone: 8 digits", PHONE("+12345678", "+12345678")},
    {"phone: 15 digits", PHONE("+123456789012345", "+123456789012345")},
    {"phone: national reaching 15 digits", PHONE("55501001234567", "+155501001234567")},

    /* Phone: what is refused. */
    {"phone: empty", PHONE_BAD("", P_EMPTY)},
    {"phone: only separators", PHONE_BAD(" - ( ) . / \t", P_EMPTY)},
    {"phone: letters", PHONE_BAD("555-CALL-NOW", P_CHAR)},
    {"phone: extension", PHONE_BAD("+1 555 010 0123 ext. 4", P_CHAR)},
    {"phone: full-width digits", PHONE_BAD("５５５０１００１２３", P_CHAR)},
    {"phone: CR inside", PHONE_BAD("555\r0100123", P_CHAR)},
    {"phone: NUL inside",
     PHONE_BAD("555\0"
               "0100123",
               P_CHAR),
     .len = 11},
    {"phone: + in the middle", PHONE_BAD("555+0100123", P_PLUS)},
    {"phone: two +", PHONE_BAD("++15550100123", P_PLUS)},
    {"phone: + at the end", PHONE_BAD("15550100123+", P_PLUS)},
    {"phone: only +", PHONE_BAD("+", P_SHORT)},
    {"phone: only 00", PHONE_BAD("00", P_SHORT)},
    {"phone: 7 digits with +", PHONE_BAD("+1234567", P_SHORT)},
    {"phone: too short once the country code is added", PHONE_BAD("555 010", P_SHORT)},
    {"phone: trunk prefix alone", PHONE_BAD("1", P_SHORT)},
    {"phone: 16 digits with +", PHONE_BAD("+1234567890123456", P_LONG)},
    {"phone: 16 digits with the country code", PHONE_BAD("555010012345678", P_LONG)},
    {"phone: country code 0", PHONE_BAD("+0 555 010 0123", P_ZERO)},
    {"phone: + then 00", PHONE_BAD("+0044 20 7946 0000", P_ZERO)},
    {"phone: 10 KB of digits", PHONE_BAD("<FILL>", P_LONG), KB10, .fill_unit = "9"},
    {"phone: + and 10 KB of digits", PHONE_BAD("+<FILL>", P_LONG), KB10, .fill_unit = "9"},
    {"phone: 10 KB of separators", PHONE_BAD("<FILL>", P_EMPTY), KB10, .fill_unit = "- "},
    {"phone: 10 KB of letters", PHONE_BAD("+1 555 <FILL>", P_CHAR), KB10},
    {"phone: 10 KB of digits, then a letter", PHONE_BAD("<FILL>x", P_CHAR), KB10, .fill_unit = "1"},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

START_TEST(test_normalise_table)
{
    const struct norm_case *c = &cases[_i];
    const char *unit = c->fill_unit ? c->fill_unit : "x";
    char *in_built = c->nfill ? fill(c->in, unit, c->nfill) : NULL;
    char *want_built = c->nfill && c->want ? fill(c->want, unit, c->nfill) : NULL;
    const char *in = in_built ? in_built : c->in;
    const char *want = want_built ? want_built : c->want;
    size_t len = c->len ? c->len : strlen(in);
    size_t outlen = (c->kind == 'e' ? IDENTITY_EMAIL_MAX : IDENTITY_PHONE_MAX) + 1;
    char *buf = exact(in, len);
    char *out = malloc(outlen);
    const char *why = "unset";
    int rc;

    ck_assert_ptr_nonnull(out);
    memset(out, 'Z', outlen);
    if (c->kind == 'e')
        rc = identity_email(buf, len, out, outlen, &why);
    else
        rc = identity_phone(buf, len, c->cc ? c->cc : "1", c->trunk ? c->trunk : "1", out, outlen,
                            &why);

    if (want != NULL) {
        ck_assert_msg(rc == 0, "%s: rc %d (%s)", c->name, rc, why);
        ck_assert_msg(strcmp(out, want) == 0, "%s: \"%s\", want \"%s\"", c->name, out, want);
    } else {
        ck_assert_msg(rc == -EINVAL, "%s: rc %d, out \"%.40s\"", c->name, rc, out);
        ck_assert_msg(strcmp(why, c->why) == 0, "%s: reason \"%s\", want \"%s\"", c->name, why,
                      c->why);
        ck_assert_msg(out[0] == '\0', "%s: out not emptied on error", c->name);
    }
    free(out);
    free(buf);
    free(want_built);
    free(in_built);
}
END_TEST

/*
 * Every prefix of a good address or number, each in a buffer of its exact
 * size, is normalised or refused without reading past it.
 */
START_TEST(test_prefixes)
{
    static const char *const inputs[] = {" Ann.Lee+crm@Mail.Example.COM ", " +1 (555) 010-0123 "};
    static const char *const wants[] = {"ann.lee+crm@mail.example.com", US};
    char out[IDENTITY_EMAIL_MAX + 1];
    const char *why;

    for (size_t k = 0; k < 2; k++) {
        size_t len = strlen(inputs[k]);

        for (size_t n = 0; n <= len; n++) {
            char *buf = exact(inputs[k], n);
            int rc = k == 0 ? identity_email(buf, n, out, sizeof(out), &why)
                            : identity_phone(buf, n, "1", "1", out, sizeof(out), &why);

            ck_assert_msg(rc == 0 || rc == -EINVAL, "input %zu, prefix %zu: rc %d", k, n, rc);
            ck_assert_uint_le(strlen(out), n + 2);
            free(buf);
        }
        ck_assert_str_eq(out, wants[k]);
    }
}
END_TEST

/* Bytes after len are never looked at, whatever they would mean. */
START_TEST(test_reads_only_len_bytes)
{
    char out[IDENTITY_EMAIL_MAX + 1];
    const char *why = NULL;

    ck_assert_int_eq(identity_email("ANN@EXAMPLE.COM@x", 15, out, sizeof(out), &why), 0);
    ck_assert_str_eq(out, "ann@example.com");
    ck_assert_int_eq(identity_phone("5550100123+x", 10, "1", "1", out, sizeof(out), &why), 0);
    ck_assert_str_eq(out, US);
    ck_assert_int_eq(identity_email(NULL, 0, out, sizeof(out), &why), -EINVAL);
    ck_assert_str_eq(why, E_EMPTY);
    ck_assert_int_eq(identity_phone(NULL, 0, "1", "1", out, sizeof(out), &why), -EINVAL);
    ck_assert_str_eq(why, P_EMPTY);

    /* why is optional. */
    ck_assert_int_eq(identity_email("a@b", 3, out, sizeof(out), NULL), -EINVAL);
    ck_assert_int_eq(identity_phone("+15550100123", 12, "1", "1", out, sizeof(out), NULL), 0);
}
END_TEST

/* A buffer one byte short is refused before anything is written past it. */
START_TEST(test_output_too_small)
{
    char *out = malloc(IDENTITY_EMAIL_MAX);
    const char *why = NULL;

    ck_assert_ptr_nonnull(out);
    memset(out, 'Z', IDENTITY_EMAIL_MAX);
    ck_assert_int_eq(identity_email("a@b.c", 5, out, IDENTITY_EMAIL_MAX, &why), -EINVAL);
    ck_assert_str_eq(why, "output buffer too small");
    ck_assert_int_eq(out[0], '\0');
    ck_assert_int_eq(out[1], 'Z');

    why = NULL;
    ck_assert_int_eq(identity_phone(US, strlen(US), "1", "1", out, IDENTITY_PHONE_MAX, &why),
                     -EINVAL);
    ck_assert_str_eq(why, "output buffer too small");
    ck_assert_int_eq(out[0], '\0');
    ck_assert_int_eq(out[IDENTITY_PHONE_MAX - 1], 'Z');

    ck_assert_int_eq(identity_email("a@b.c", 5, NULL, 0, &why), -EINVAL);
    ck_assert_int_eq(identity_phone(US, strlen(US), "1", "1", out, 0, &why), -EINVAL);
    ck_assert_int_eq(out[0], '\0');
    free(out);
}
END_TEST

/* config.c validates these; identity_phone still refuses what it cannot use. */
START_TEST(test_phone_settings)
{
    char out[IDENTITY_PHONE_MAX + 1];
    const char *why = NULL;

    ck_assert_int_eq(identity_phone(US, 12, "", "1", out, sizeof(out), &why), -EINVAL);
    ck_assert_str_eq(why, "default country code is not 1 to 3 digits");
    ck_assert_int_eq(identity_phone(US, 12, NULL, "1", out, sizeof(out), &why), -EINVAL);
    ck_assert_int_eq(identity_phone(US, 12, "1234", "1", out, sizeof(out), &why), -EINVAL);
    ck_assert_int_eq(identity_phone(US, 12, "4a", "1", out, sizeof(out), &why), -EINVAL);
    ck_assert_int_eq(identity_phone(US, 12, "1", "123", out, sizeof(out), &why), -EINVAL);
    ck_assert_str_eq(why, "trunk prefix is not 0 to 2 digits");
    ck_assert_int_eq(identity_phone(US, 12, "1", "x", out, sizeof(out), &why), -EINVAL);

    /* A NULL trunk prefix is an empty one: nothing is stripped. */
    ck_assert_int_eq(identity_phone("15550100", 8, "1", NULL, out, sizeof(out), &why), 0);
    ck_assert_str_eq(out, "+115550100");
    /* A country code of three digits, and a trunk prefix of two. */
    ck_assert_int_eq(identity_phone("06 20 123 4567", 14, "36", "06", out, sizeof(out), &why), 0);
    ck_assert_str_eq(out, "+36201234567");
    ck_assert_int_eq(identity_phone("99 123 456", 10, "380", "0", out, sizeof(out), &why), 0);
    ck_assert_str_eq(out, "+38099123456");
}
END_TEST

/* The published FNV-1a 64 test vectors (Fowler, Noll, Vo; draft-eastlake-fnv). */
START_TEST(test_hash_vectors)
{
    ck_assert_uint_eq(identity_hash("", 0), UINT64_C(0xcbf29ce484222325));
    ck_assert_uint_eq(identity_hash(NULL, 0), UINT64_C(0xcbf29ce484222325));
    ck_assert_uint_eq(identity_hash("a", 1), UINT64_C(0xaf63dc4c8601ec8c));
    ck_assert_uint_eq(identity_hash("foobar", 6), UINT64_C(0x85944171f73967e8));
}
END_TEST

/*
 * These pin the public contract: downstream systems key and deduplicate on
 * these ids, so a change here breaks them. The values were computed once by
 * a separate FNV-1a implementation (twelve lines of Python) over the
 * concatenated strings, not by the code under test.
 */
static const struct {
    const char *kind, *canonical, *id;
} customer_vectors[] = {
    {"email", "ann@example.com", "cus_025dfd69c69c41cf"},
    {"phone", "+15550100123", "cus_14b789b1840311b1"},
    {"email", "josÉ@example.com", "cus_bea2b8622ccc7840"},
    {"phone", "+4915112345678", "cus_32aa934166fa3470"},
};

static const struct {
    const char *channel, *source_id;
    size_t len;
    const char *id;
} ticket_vectors[] = {
    {"email", "m1", 2, "tkt_b6fce6955896017d"},
    {"whatsapp", "wamid.HBgLMTU1NTAxMDAxMjM", 25, "tkt_1136eb21ce9dee30"},
    {"form", "s1", 2, "tkt_52e8d8e37ac2b7f7"},
    {"email", "", 0, "tkt_9bc87407a083dba7"},
    {"email", "m1 and what follows is not part of it", 2, "tkt_b6fce6955896017d"},
    {"email", "a\0b", 3, "tkt_63b738c573cc743c"},
};

START_TEST(test_id_vectors)
{
    /* Exactly IDENTITY_ID_LEN + 1 bytes, so a longer write is an ASan error. */
    char *out = malloc(IDENTITY_ID_LEN + 1);

    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < sizeof(customer_vectors) / sizeof(customer_vectors[0]); i++) {
        identity_customer_id(customer_vectors[i].kind, customer_vectors[i].canonical, out);
        ck_assert_str_eq(out, customer_vectors[i].id);
    }
    for (size_t i = 0; i < sizeof(ticket_vectors) / sizeof(ticket_vectors[0]); i++) {
        char *src = exact(ticket_vectors[i].source_id, ticket_vectors[i].len);

        identity_ticket_id(ticket_vectors[i].channel, src, ticket_vectors[i].len, out);
        ck_assert_str_eq(out, ticket_vectors[i].id);
        free(src);
    }
    identity_ticket_id("email", NULL, 0, out);
    ck_assert_str_eq(out, "tkt_9bc87407a083dba7");
    free(out);
}
END_TEST

/* The incremental hashing equals hashing the joined string, with leading zeros printed. */
START_TEST(test_id_is_hash_of_joined)
{
    static const char *const numbers[] = {"+15550100123", "+442079460000", "+12345678"};
    char id[IDENTITY_ID_LEN + 1], joined[64], want[IDENTITY_ID_LEN + 1];

    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        int n = snprintf(joined, sizeof(joined), "phone:%s", numbers[i]);

        snprintf(want, sizeof(want), "cus_%016" PRIx64, identity_hash(joined, (size_t)n));
        identity_customer_id("phone", numbers[i], id);
        ck_assert_str_eq(id, want);
        ck_assert_uint_eq(strlen(id), IDENTITY_ID_LEN);
    }
    /* Search for a hash below 2^60 so that the zero padding is seen at work. */
    for (unsigned i = 0;; i++) {
        int n = snprintf(joined, sizeof(joined), "form:%u", i);
        uint64_t h = identity_hash(joined, (size_t)n);

        if (h >> 60 != 0)
            continue;
        snprintf(joined, sizeof(joined), "%u", i);
        identity_ticket_id("form", joined, strlen(joined), id);
        snprintf(want, sizeof(want), "tkt_%016" PRIx64, h);
        ck_assert_str_eq(id, want);
        ck_assert_int_eq(id[4], '0');
        break;
    }
}
END_TEST

static Suite *identity_suite(void)
{
    Suite *s = suite_create("identity");
    TCase *tc = tcase_create("normalise");

    tcase_add_loop_test(tc, test_normalise_table, 0, (int)NCASES);
    tcase_add_test(tc, test_prefixes);
    tcase_add_test(tc, test_reads_only_len_bytes);
    tcase_add_test(tc, test_output_too_small);
    tcase_add_test(tc, test_phone_settings);
    suite_add_tcase(s, tc);

    tc = tcase_create("ids");
    tcase_add_test(tc, test_hash_vectors);
    tcase_add_test(tc, test_id_vectors);
    tcase_add_test(tc, test_id_is_hash_of_joined);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(identity_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
