/* SPDX-License-Identifier: MIT */
/* check_identity.c -- unit tests for address and number normalisation and the ids. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "phone.h"

#define US "+15550100123"
#define UK "+442079460000"
#define DE "+4915112345678"
/* The numbers of the spellings that used to split customers, and one of each other country. */
#define GB1 "+442079460958"
#define DE1 "+49301234567"
#define FR1 "+33123456789"
#define IN1 "+919876543210"
#define BR1 "+5511912345678"
#define CA1 "+14165550123"
#define AU1 "+61298765432"

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
#define P_SHORT   "phone number is too short"
#define P_SHORTCC "phone number is too short for its country"
#define P_LONGCC  "phone number is too long for its country"
#define P_LONG    "phone number has more than 15 digits"
#define P_CC      "phone number has no valid country code"
#define P_AREA    "phone number lacks its area code"
#define P_REGION  "the default region is not one libphonenumber knows"

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
    const char *region;    /* the default region; NULL: "US" */
    const char *want;      /* the normalised form; NULL when an error is expected */
    const char *why;       /* the expected reason */
};

#define EMAIL(in, w)     .kind = 'e', in, .want = w
#define EMAIL_BAD(in, r) .kind = 'e', in, .why = r
#define PHONE(in, w)     .kind = 'p', in, .want = w
#define PHONE_BAD(in, r) .kind = 'p', in, .why = r
#define IN_GB            .region = "GB"
#define IN_DE            .region = "DE"
#define IN_FR            .region = "FR"
#define IN_IN            .region = "IN"
#define IN_BR            .region = "BR"
#define IN_CA            .region = "CA"
#define IN_AU            .region = "AU"
#define IN_IT            .region = "IT"
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

    /* Phone: one US number written nine ways (in the default region, US). */
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
    {"phone: national with trunk 0", PHONE("020 7946 0000", UK), IN_GB},
    /* This one used to keep the trunk zero: "+4402079460000", a second customer. */
    {"phone: 00 and (0) together", PHONE("0044 (0)20-7946-0000", UK), IN_GB},
    {"phone: German mobile", PHONE("0151/12345678", DE), IN_DE},
    {"phone: German mobile with 00", PHONE("00 49 151 1234 5678", DE), IN_DE},
    {"phone: Italian numbers keep their 0", PHONE("06 1234 5678", "+390612345678"), IN_IT},
    {"phone: national in Canada", PHONE("555 010 0123", US), IN_CA},
    {"phone: shorter than 8 digits (Niue)", PHONE("+683 1234", "+6831234")},
    {"phone: 15 digits", PHONE("+49 30 12345678901", "+493012345678901")},

    /* Phone: the spellings that split customers, as a US default region reads them. */
    {"phone: +44 (0)20", PHONE("+44 (0)20 7946 0958", GB1)},
    {"phone: +44 (0) 20", PHONE("+44 (0) 20 7946 0958", GB1)},
    {"phone: +44 020", PHONE("+44 020 7946 0958", GB1)},
    {"phone: +49 (0)30", PHONE("+49 (0)30 1234567", DE1)},
    {"phone: +49 (0) 30 /", PHONE("+49 (0) 30 / 123 45 67", DE1)},
    {"phone: 011 from the US", PHONE("011 44 20 7946 0958", GB1)},
    {"phone: 00 from the US", PHONE("0044 20 7946 0958", GB1)},

    /* Phone: GB. */
    {"phone: GB national", PHONE("020 7946 0958", GB1), IN_GB},
    {"phone: GB national in parentheses", PHONE("(020) 7946-0958", GB1), IN_GB},
    {"phone: GB with +", PHONE("+44 20 7946 0958", GB1), IN_GB},
    {"phone: GB with (0)", PHONE("+44 (0)20 7946 0958", GB1), IN_GB},
    {"phone: GB with a stray trunk 0", PHONE("+44 020 7946 0958", GB1), IN_GB},
    {"phone: GB with 00 and (0)", PHONE("0044 (0)20 7946 0958", GB1), IN_GB},
    {"phone: GB with dashes", PHONE("020-7946-0958", GB1), IN_GB},
    {"phone: GB mobile", PHONE("07700 900123", "+447700900123"), IN_GB},
    {"phone: GB with letters", PHONE_BAD("020 CALL 0958", P_CHAR), IN_GB},
    {"phone: GB too short", PHONE_BAD("+44 20", P_SHORTCC), IN_GB},
    {"phone: GB too long", PHONE_BAD("020 7946 09581", P_LONGCC), IN_GB},

    /* Phone: DE. */
    {"phone: DE national", PHONE("030 1234567", DE1), IN_DE},
    {"phone: DE with +", PHONE("+49 30 1234567", DE1), IN_DE},
    {"phone: DE with (0)", PHONE("+49 (0)30 1234567", DE1), IN_DE},
    {"phone: DE with (0) and a slash", PHONE("+49 (0) 30 / 123 45 67", DE1), IN_DE},
    {"phone: DE with a stray trunk 0", PHONE("+49 030 1234567", DE1), IN_DE},
    /* Read once, it is +490301234567; read again, the second zero goes too. */
    {"phone: DE with (0) and a stray 0", PHONE("+49 (0)030 1234567", DE1), IN_DE},
    {"phone: DE with 00", PHONE("0049 30 1234567", DE1), IN_DE},
    {"phone: DE with a slash", PHONE("030/123 45 67", DE1), IN_DE},
    {"phone: DE with letters", PHONE_BAD("030 ANRUF", P_CHAR), IN_DE},
    {"phone: DE too short", PHONE_BAD("+49 3", P_SHORT), IN_DE},
    {"phone: DE too long for E.164", PHONE_BAD("+49 30 123456789012", P_LONG), IN_DE},
    {"phone: DE too long", PHONE_BAD("+49 3012345678901234", P_LONGCC), IN_DE},

    /* Phone: FR. */
    {"phone: FR national", PHONE("01 23 45 67 89", FR1), IN_FR},
    {"phone: FR with dots", PHONE("01.23.45.67.89", FR1), IN_FR},
    {"phone: FR with +", PHONE("+33 1 23 45 67 89", FR1), IN_FR},
    {"phone: FR with (0)", PHONE("+33 (0)1 23 45 67 89", FR1), IN_FR},
    {"phone: FR with a stray trunk 0", PHONE("+33 01 23 45 67 89", FR1), IN_FR},
    {"phone: FR with 00", PHONE("0033 1 23 45 67 89", FR1), IN_FR},
    {"phone: FR mobile", PHONE("06 12 34 56 78", "+33612345678"), IN_FR},
    {"phone: FR with letters", PHONE_BAD("01 23 45 67 AB", P_CHAR), IN_FR},
    {"phone: FR too short", PHONE_BAD("01 23 45 67", P_SHORTCC), IN_FR},
    {"phone: FR too long", PHONE_BAD("01 23 45 67 89 0", P_LONGCC), IN_FR},

    /* Phone: IN. */
    {"phone: IN mobile", PHONE("9876543210", IN1), IN_IN},
    {"phone: IN mobile with trunk 0", PHONE("098765 43210", IN1), IN_IN},
    {"phone: IN with trunk 0 apart", PHONE("0 98765 43210", IN1), IN_IN},
    {"phone: IN with +", PHONE("+91 98765 43210", IN1), IN_IN},
    {"phone: IN with (0)", PHONE("+91 (0)98765 43210", IN1), IN_IN},
    {"phone: IN with 00", PHONE("0091 98765 43210", IN1), IN_IN},
    {"phone: IN with dashes", PHONE("+91-98765-43210", IN1), IN_IN},
    {"phone: IN Delhi landline", PHONE("011 2345 6789", "+911123456789"), IN_IN},
    {"phone: IN with letters", PHONE_BAD("98765 HELLO", P_CHAR), IN_IN},
    {"phone: IN too short", PHONE_BAD("+91 98765", P_SHORTCC), IN_IN},
    {"phone: IN too long", PHONE_BAD("+91 98765 43210 1234", P_LONGCC), IN_IN},

    /* Phone: BR, where 00 and two digits (a carrier) is the region's own prefix. */
    {"phone: BR national", PHONE("(11) 91234-5678", BR1), IN_BR},
    {"phone: BR with trunk 0", PHONE("0 11 91234-5678", BR1), IN_BR},
    {"phone: BR with +", PHONE("+55 11 91234-5678", BR1), IN_BR},
    {"phone: BR with (0)", PHONE("+55 (0)11 91234 5678", BR1), IN_BR},
    {"phone: BR 00 beats carrier 55", PHONE("0055 11 91234 5678", BR1), IN_BR},
    {"phone: BR 00 beats carrier 41", PHONE("0041 44 668 1800", "+41446681800"), IN_BR},
    {"phone: BR carrier 21 when 00 is no number", PHONE("0021 44 20 7946 0958", GB1), IN_BR},
    {"phone: BR with letters", PHONE_BAD("(11) 9CALL-5678", P_CHAR), IN_BR},
    {"phone: BR too short", PHONE_BAD("(11) 912", P_SHORTCC), IN_BR},
    {"phone: BR too long", PHONE_BAD("(11) 91234-56789", P_LONGCC), IN_BR},

    /* Phone: CA, and AU, whose own international prefix 0011 begins with 00. */
    {"phone: CA national", PHONE("416-555-0123", CA1), IN_CA},
    {"phone: CA with trunk 1", PHONE("1 (416) 555-0123", CA1), IN_CA},
    {"phone: CA with +", PHONE("+1 416 555 0123", CA1), IN_CA},
    {"phone: CA with 011", PHONE("011 44 20 7946 0958", GB1), IN_CA},
    {"phone: CA with 00", PHONE("0044 20 7946 0958", GB1), IN_CA},
    {"phone: AU national", PHONE("(02) 9876 5432", AU1), IN_AU},
    {"phone: AU with (0)", PHONE("+61 (0)2 9876 5432", AU1), IN_AU},
    {"phone: AU with 0011", PHONE("0011 44 20 7946 0958", GB1), IN_AU},
    {"phone: Italian 0 after +39 (0)", PHONE("+39 (0)6 1234 5678", "+390612345678"), IN_IT},

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
    {"phone: one digit", PHONE_BAD("1", P_SHORT)},
    {"phone: 7 digits with +", PHONE_BAD("+1234567", P_SHORTCC)},
    {"phone: too short for the region", PHONE_BAD("555 010", P_SHORTCC)},
    /* Both used to pass as "+12345678" and "+15550123", which no one can dial. */
    {"phone: + without an area code", PHONE_BAD("+12345678", P_AREA)},
    {"phone: national without an area code", PHONE_BAD("555 0123", P_AREA)},
    {"phone: 16 digits with +", PHONE_BAD("+1234567890123456", P_LONGCC)},
    {"phone: 16 digits with the country code", PHONE_BAD("555010012345678", P_LONGCC)},
    {"phone: national too long", PHONE_BAD("55501001234567", P_LONGCC)},
    {"phone: country code 0", PHONE_BAD("+0 555 010 0123", P_CC)},
    {"phone: + then 00", PHONE_BAD("+0044 20 7946 0000", P_CC)},
    {"phone: unassigned country code", PHONE_BAD("+999 1234 5678", P_CC)},
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
    const char *region = c->region ? c->region : "US";
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
        rc = identity_phone(buf, len, region, out, outlen, &why);

    if (want != NULL) {
        ck_assert_msg(rc == 0, "%s: rc %d (%s)", c->name, rc, why);
        ck_assert_msg(strcmp(out, want) == 0, "%s: \"%s\", want \"%s\"", c->name, out, want);
        /* A result reads back to itself, or one customer would have two numbers. */
        if (c->kind == 'p') {
            char again[IDENTITY_PHONE_MAX + 1];

            ck_assert_int_eq(identity_phone(out, strlen(out), region, again, sizeof(again), &why),
                             0);
            ck_assert_str_eq(again, out);
        }
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
                            : identity_phone(buf, n, "US", out, sizeof(out), &why);

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
    ck_assert_int_eq(identity_phone("5550100123+x", 10, "US", out, sizeof(out), &why), 0);
    ck_assert_str_eq(out, US);
    ck_assert_int_eq(identity_email(NULL, 0, out, sizeof(out), &why), -EINVAL);
    ck_assert_str_eq(why, E_EMPTY);
    ck_assert_int_eq(identity_phone(NULL, 0, "US", out, sizeof(out), &why), -EINVAL);
    ck_assert_str_eq(why, P_EMPTY);

    /* why is optional. */
    ck_assert_int_eq(identity_email("a@b", 3, out, sizeof(out), NULL), -EINVAL);
    ck_assert_int_eq(identity_phone("+15550100123", 12, "US", out, sizeof(out), NULL), 0);
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
    ck_assert_int_eq(identity_phone(US, strlen(US), "US", out, IDENTITY_PHONE_MAX, &why), -EINVAL);
    ck_assert_str_eq(why, "output buffer too small");
    ck_assert_int_eq(out[0], '\0');
    ck_assert_int_eq(out[IDENTITY_PHONE_MAX - 1], 'Z');

    ck_assert_int_eq(identity_email("a@b.c", 5, NULL, 0, &why), -EINVAL);
    ck_assert_int_eq(identity_phone(US, strlen(US), "US", out, 0, &why), -EINVAL);
    ck_assert_int_eq(out[0], '\0');
    free(out);
}
END_TEST

/* config.c validates the region; identity_phone still refuses one it cannot use. */
START_TEST(test_phone_region)
{
    static const char *const bad[] = {NULL, "", "us", "USA", "U", "U1", "ZZ", "001", "XK1"};
    char out[IDENTITY_PHONE_MAX + 1];
    const char *why = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        ck_assert_int_eq(identity_phone(US, 12, bad[i], out, sizeof(out), &why), -EINVAL);
        ck_assert_str_eq(why, P_REGION);
        ck_assert_int_eq(out[0], '\0');
    }
    /* One spelling, three regions, each its own answer: what is remembered is by region. */
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(identity_phone("020 7946 0958", 13, "GB", out, sizeof(out), &why), 0);
        ck_assert_str_eq(out, GB1);
        ck_assert_int_eq(identity_phone("020 7946 0958", 13, "DE", out, sizeof(out), &why), 0);
        ck_assert_str_eq(out, "+492079460958");
        ck_assert_int_eq(identity_phone("020 7946 0958", 13, "US", out, sizeof(out), &why),
                         -EINVAL);
        ck_assert_str_eq(why, P_LONGCC);
    }
}
END_TEST

/*
 * More numbers than the table of remembered ones holds (65536), in two
 * regions, then the first of them again, when some have been pushed out:
 * every answer is still the number's own. Written with their trunk zero,
 * so that each takes libphonenumber's parser and the table.
 */
START_TEST(test_phone_remembered)
{
    enum { N = 70000, AGAIN = 3000 };
    char in[32], want[32], out[IDENTITY_PHONE_MAX + 1];
    const char *why = NULL;
    unsigned bad = 0, first_bad = 0;

    for (unsigned k = 0; k < N + AGAIN; k++) {
        unsigned i = k < N ? k : k - N;
        const char *cc = i % 2 == 0 ? "44" : "49";

        snprintf(in, sizeof(in), "020 %04u %04u", 7900 + i / 10000, i % 10000);
        ck_assert_int_eq(phone_normalise_quick(in, "GB", out, sizeof(out)), 0);
        snprintf(want, sizeof(want), "+%s20%04u%04u", cc, 7900 + i / 10000, i % 10000);
        if ((identity_phone(in, strlen(in), i % 2 == 0 ? "GB" : "DE", out, sizeof(out), &why) !=
                 0 ||
             strcmp(out, want) != 0) &&
            bad++ == 0)
            first_bad = k;
    }
    ck_assert_msg(bad == 0, "%u wrong answers, the first for call %u", bad, first_bad);
}
END_TEST

struct phone_worker {
    unsigned seed;
    unsigned wrong;
};

/*
 * Numbers normalised from several threads at once give the answers one
 * thread gets: half of them read quickly, half (written with the trunk
 * prefix 1) by the parser and then from the shared table.
 */
static void *phone_worker_run(void *arg)
{
    struct phone_worker *w = arg;
    char in[32], want[32], out[IDENTITY_PHONE_MAX + 1];
    const char *why = NULL;

    for (unsigned k = 0; k < 4000; k++) {
        unsigned i = (k * 7919u + w->seed) % 600;

        snprintf(in, sizeof(in), "%s(555) 01%u-%04u", i % 2 ? "1 " : "", i % 10, i);
        snprintf(want, sizeof(want), "+155501%u%04u", i % 10, i);
        if (identity_phone(in, strlen(in), "US", out, sizeof(out), &why) != 0 ||
            strcmp(out, want) != 0)
            w->wrong++;
    }
    return NULL;
}

START_TEST(test_phone_threads)
{
    enum { THREADS = 4 };
    pthread_t t[THREADS];
    struct phone_worker w[THREADS];

    for (unsigned i = 0; i < THREADS; i++) {
        w[i] = (struct phone_worker){.seed = i * 131u};
        ck_assert_int_eq(pthread_create(&t[i], NULL, phone_worker_run, &w[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_uint_eq(w[i].wrong, 0);
    }
}
END_TEST

/* A digit string of len digits from a little generator, first digit `first`. */
static void digits_from(char *out, size_t len, char first, uint32_t *state)
{
    out[0] = first;
    for (size_t i = 1; i < len; i++) {
        *state = *state * 1103515245u + 12345u;
        out[i] = (char)('0' + (*state >> 16) % 10);
    }
    out[len] = '\0';
}

/*
 * Whenever the quick reading answers (and so it is counted), libphonenumber's
 * parser gives the same answer.
 */
static unsigned quick_against_parser(const char *number, const char *region, unsigned *wrong)
{
    char quick[IDENTITY_PHONE_MAX + 1], full[IDENTITY_PHONE_MAX + 1];
    const char *why = NULL;

    if (!phone_normalise_quick(number, region, quick, sizeof(quick)))
        return 0;
    if (phone_normalise(number, region, full, sizeof(full), &why) != 0 ||
        strcmp(quick, full) != 0) {
        if ((*wrong)++ < 10)
            fprintf(stderr, "%s in %s: quickly %s, by the parser %s\n", number, region, quick,
                    why ? why : full);
    }
    return 1;
}

/*
 * Every country code with a '+', every region without it, each first digit
 * and national length, and digits that begin with the region's own code.
 */
START_TEST(test_quick_agrees_with_parser)
{
    static const char *const regions[] = {"US", "GB", "AR", "CA"};
    char number[40], region[3] = "AA";
    uint32_t state = 12345;
    unsigned answered = 0, wrong = 0;

    for (int code = 1; code < 1000; code++)
        for (size_t len = 1; len <= 14; len++)
            for (char first = '0'; first <= '9'; first++) {
                int n = snprintf(number, sizeof(number), "+%d", code);

                digits_from(number + n, len, first, &state);
                answered += quick_against_parser(number, regions[(code + len) % 4], &wrong);
            }
    ck_assert_uint_gt(answered, 10000);
    for (region[0] = 'A'; region[0] <= 'Z'; region[0]++)
        for (region[1] = 'A'; region[1] <= 'Z'; region[1]++)
            for (size_t len = 2; len <= 15; len++) {
                int code = phone_region_code(region), n;

                for (char first = '0'; first <= '9'; first++) {
                    digits_from(number, len, first, &state);
                    answered += quick_against_parser(number, region, &wrong);
                }
                /* Digits that begin with the region's own code may be read as written with it. */
                for (int k = 0; code != 0 && k < 4; k++) {
                    n = snprintf(number, sizeof(number), "%d", code);
                    digits_from(number + n, len, (char)('1' + k), &state);
                    answered += quick_against_parser(number, region, &wrong);
                }
            }
    ck_assert_uint_gt(answered, 20000);
    ck_assert_msg(wrong == 0, "%u of %u quick answers differ from the parser's", wrong, answered);
}
END_TEST

/* What the quick reading answers, and what it leaves to the parser. */
START_TEST(test_quick_cases)
{
    static const struct {
        const char *number, *region, *e164; /* e164 NULL: left to the parser */
    } samples[] = {
        {"+15550100123", "US", "+15550100123"},
        {"+15550100123", "GB", "+15550100123"},
        {"5550100123", "US", "+15550100123"},
        {"+442079460958", "DE", "+442079460958"},
        {"2079460958", "GB", "+442079460958"},
        {"+919876543210", "IN", "+919876543210"},
        {"+80012345678", "US", "+80012345678"},
        {"02079460958", "GB", NULL},    /* the trunk zero */
        {"+4402079460958", "GB", NULL}, /* the trunk zero after the code */
        {"15550100123", "US", NULL},    /* the trunk prefix 1 */
        {"01144207946095", "US", NULL}, /* the international prefix 011 */
        {"4165550123", "CA", NULL},     /* CA shares +1 with its owner, US */
        {"+5491123456789", "AR", NULL}, /* Argentina's prefix pattern can match nothing */
        {"+390612345678", "IT", NULL},  /* Italy keeps its leading zero */
        {"442079460958", "GB", NULL},   /* begins with the region's own code */
        {"+1555", "US", NULL},          /* too short for +1 */
        {"+15550100123", "XX", NULL},   /* no such region */
        {"+99912345678", "US", NULL},   /* no such code */
    };
    char out[IDENTITY_PHONE_MAX + 1], full[IDENTITY_PHONE_MAX + 1];
    const char *why = NULL;

    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        int answered =
            phone_normalise_quick(samples[i].number, samples[i].region, out, sizeof(out));

        ck_assert_msg(answered == (samples[i].e164 != NULL), "%s in %s: quick %d",
                      samples[i].number, samples[i].region, answered);
        if (!answered)
            continue;
        ck_assert_str_eq(out, samples[i].e164);
        ck_assert_int_eq(
            phone_normalise(samples[i].number, samples[i].region, full, sizeof(full), &why), 0);
        ck_assert_str_eq(full, out);
    }
    /* Bad arguments: no answer, nothing written. */
    out[0] = 'x';
    ck_assert_int_eq(phone_normalise_quick("+1 555 0100123", "US", out, sizeof(out)), 0);
    ck_assert_int_eq(phone_normalise_quick(NULL, "US", out, sizeof(out)), 0);
    ck_assert_int_eq(phone_normalise_quick("+15550100123", NULL, out, sizeof(out)), 0);
    ck_assert_int_eq(phone_normalise_quick("+15550100123", "US", out, PHONE_E164_MAX), 0);
    ck_assert_int_eq(out[0], 'x');
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
    suite_add_tcase(s, tc);

    /* The table of remembered numbers, filled past its size: seconds under sanitizers. */
    tc = tcase_create("phones");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_phone_region);
    tcase_add_test(tc, test_phone_remembered);
    tcase_add_test(tc, test_phone_threads);
    tcase_add_test(tc, test_quick_agrees_with_parser);
    tcase_add_test(tc, test_quick_cases);
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
