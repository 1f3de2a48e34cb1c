/* SPDX-License-Identifier: MIT */
/* phone.cc -- phone numbers to E.164 by libphonenumber: the one C++ unit, behind phone.h. */
#include "phone.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include <phonenumbers/logger.h>
#include <phonenumbers/phonemetadata.pb.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

/*
 * The metadata compiled into libphonenumber, the very bytes PhoneNumberUtil
 * loads. The library exports these two functions but installs no header
 * for them (upstream's metadata.h); should a version drop them, the link
 * fails, it does not go wrong quietly.
 */
namespace i18n
{
namespace phonenumbers
{
int metadata_size();
const void *metadata_get();
} // namespace phonenumbers
} // namespace i18n

using i18n::phonenumbers::NullLogger;
using i18n::phonenumbers::PhoneMetadata;
using i18n::phonenumbers::PhoneMetadataCollection;
using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace
{

/*
 * Reading a result back drops at most one trunk prefix a round ("+49 0 030"
 * takes two); a number that still changes after this many is refused.
 */
constexpr int SETTLE_ROUNDS = 4;

constexpr const char *UNKNOWN_REGION = "the default region is not one libphonenumber knows";

/*
 * libphonenumber's utility, made on first use: C++ makes a function's
 * static once whatever the threads, and GetInstance() is a once-only
 * singleton itself. It is never destroyed (reachable until exit). Its log
 * goes nowhere: the daemon's log is its own, and every outcome reaches the
 * caller as a reason.
 */
const PhoneNumberUtil &util()
{
    static PhoneNumberUtil *const instance = [] {
        PhoneNumberUtil *u = PhoneNumberUtil::GetInstance();

        u->SetLogger(new NullLogger());
        return u;
    }();
    return *instance;
}

const char *parse_reason(PhoneNumberUtil::ErrorType e)
{
    switch (e) {
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
        return "phone number has no valid country code";
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
        return "phone number is too short after its international prefix";
    case PhoneNumberUtil::NOT_A_NUMBER:
    case PhoneNumberUtil::TOO_SHORT_NSN:
        return "phone number is too short";
    case PhoneNumberUtil::TOO_LONG_NSN:
        return "phone number is too long";
    default:
        return "phone number cannot be read";
    }
}

const char *length_reason(PhoneNumberUtil::ValidationResult r)
{
    switch (r) {
    case PhoneNumberUtil::IS_POSSIBLE_LOCAL_ONLY:
        return "phone number lacks its area code";
    case PhoneNumberUtil::INVALID_COUNTRY_CODE:
        return "phone number has no valid country code";
    case PhoneNumberUtil::TOO_SHORT:
        return "phone number is too short for its country";
    case PhoneNumberUtil::TOO_LONG:
        return "phone number is too long for its country";
    default:
        return "phone number has a length its country does not use";
    }
}

/*
 * Read text as written in region into n. Returns nullptr when it is a
 * complete possible number, else the reason. keep_source: record how the
 * country code was found (n->country_code_source()).
 */
const char *read_number(const std::string &text, const std::string &region, PhoneNumber *n,
                        bool keep_source = false)
{
    PhoneNumberUtil::ErrorType e =
        keep_source ? util().ParseAndKeepRawInput(text, region, n) : util().Parse(text, region, n);
    if (e != PhoneNumberUtil::NO_PARSING_ERROR)
        return parse_reason(e);
    PhoneNumberUtil::ValidationResult r = util().IsPossibleNumberWithReason(*n);
    return r == PhoneNumberUtil::IS_POSSIBLE ? nullptr : length_reason(r);
}

std::string e164(const PhoneNumber &n)
{
    std::string s;

    util().Format(n, PhoneNumberUtil::E164, &s);
    return s;
}

/*
 * A number written with a leading "00". It is an international prefix
 * everywhere; but where the region's own prefix also starts with 00
 * (Australia's 0011, Brazil's 00 and a carrier code), "0011 44 20..." is
 * not +11 44... The region's reading counts only when its own
 * international prefix took the digits, and wins when the "00" reading is
 * not a possible number, or when only the region's reading is valid.
 */
const char *read_double_zero(const std::string &number, const std::string &region, PhoneNumber *n)
{
    PhoneNumber own;
    const char *why = read_number("+" + number.substr(2), region, n);

    if (read_number(number, region, &own, true) != nullptr ||
        own.country_code_source() != PhoneNumber::FROM_NUMBER_WITH_IDD)
        return why;
    if (why == nullptr &&
        (e164(own) == e164(*n) || !util().IsValidNumber(own) || util().IsValidNumber(*n)))
        return nullptr;
    *n = own;
    return nullptr;
}

/*
 * Whether s, the E.164 form read from number, reads back to itself without
 * reading it again, which costs as much as the first reading. A second
 * reading drops from the digits after the country code what the first
 * would have dropped from the same digits by the same rules, so when the
 * first dropped nothing, neither does the second. The first dropped
 * nothing when a number with '+' comes out as it went in, or a national
 * number comes out as the region's code and its digits and the region
 * owns the code (a region sharing it, such as Jersey with +44, may read
 * its local numbers by rules of its own).
 */
bool settled(const std::string &number, const std::string &region, const PhoneNumber &n,
             const std::string &s)
{
    std::string owner;

    if (number[0] == '+')
        return s == number;
    util().GetRegionCodeForCountryCode(n.country_code(), &owner);
    return owner == region && s == "+" + std::to_string(n.country_code()) + number;
}

/* The E.164 form of number (see phone_normalise) in *out, or the reason it has none. */
const char *normalise(const std::string &number, const std::string &region, std::string *out)
{
    PhoneNumber n;
    bool double_zero = number.compare(0, 2, "00") == 0;
    const char *why =
        double_zero ? read_double_zero(number, region, &n) : read_number(number, region, &n);

    if (why != nullptr)
        return why;
    /*
     * The result must read back to itself, or the same customer written as
     * "+49 (0)030 1234567" and as its own result would be two: reading
     * "+490301234567" drops the trunk zero that was left in it.
     */
    std::string s = e164(n);
    const std::string as_read = double_zero ? "+" + number.substr(2) : number;
    for (int round = 0; !settled(as_read, region, n, s); round++) {
        PhoneNumber again;

        if ((why = read_number(s, region, &again)) != nullptr)
            return why;
        std::string next = e164(again);
        if (next == s)
            break;
        if (round == SETTLE_ROUNDS)
            return "phone number does not settle on one form";
        s = next;
    }
    if (s.size() > PHONE_E164_MAX)
        return "phone number has more than 15 digits";
    *out = s;
    return nullptr;
}

/* "+" or nothing, then 1 to 64 ASCII digits. */
bool well_formed(const char *number)
{
    size_t i = number[0] == '+' ? 1 : 0, start = i;

    for (; number[i] != '\0'; i++)
        if (number[i] < '0' || number[i] > '9' || i - start >= 64)
            return false;
    return i > start;
}

/*
 * The quick reading.
 *
 * Parse() is written for whatever a person may type (letters, extensions,
 * "tel:" URIs, the digits of other scripts) and runs a dozen ICU regular
 * expressions over it: it costs more than all the rest of a message. What
 * reaches this unit is a '+' or nothing and ASCII digits, and on such a
 * string Parse() and IsPossibleNumberWithReason() do only this:
 *
 *  - With '+', the country code is the first 1 to 3 digits that make one
 *    (GetRegionCodeForCountryCode() is not "ZZ"), and the rest N is the
 *    national number. Without, the region's international prefix is taken
 *    off when its pattern matches at the start (and it is read as with
 *    '+'); else digits that begin with the region's own country code may be
 *    read as written with it; else N is all the digits and the code is the
 *    region's.
 *  - A national prefix is taken off N when the pattern
 *    national_prefix_for_parsing of the metadata (the code's main region,
 *    or the region's own for a number without '+') matches at its start.
 *  - The number is possible when N's length is one its code's main region
 *    has; its E.164 form is '+', the code and N.
 *
 * So when none of those patterns can match at the start of N -- its first
 * digit is not one any match of them can begin with, and none of them can
 * match nothing -- nothing is taken off, and the answer is '+', the code
 * and N, when N has a possible length. The quick reading answers only then,
 * from tables learnt once from the library's own metadata and answers, and
 * leaves every other number, and every refusal with its reason, to the
 * library. A national number starting with '0' always goes the long way
 * (Italy keeps its leading zero, by rules of its own), as does one read in
 * a region that shares its code without owning it: that answer is read
 * again (see settled()). tests/check_identity.c holds the two readings to
 * the same answers over every country code and region.
 */

/* Bit d for the digit d. */
constexpr unsigned ALL_DIGITS = 0x3ff;

/* The shortest and longest national numbers libphonenumber reads (its kMin/kMaxLengthForNsn). */
constexpr size_t NSN_MIN = 2;
constexpr size_t NSN_MAX = 17;

/*
 * The digits a match of a metadata pattern can begin with, at the start of
 * a string of digits; every digit when it can match nothing, or when the
 * pattern holds more than digits, classes, groups, alternatives,
 * quantifiers, \d and $ (the metadata holds nothing else): then the scan
 * gives up and assumes the worst.
 */
class LeadScan
{
  public:
    explicit LeadScan(const std::string &pattern) : p_(pattern.c_str())
    {
    }

    unsigned digits()
    {
        Lead all = alternatives();

        return ok_ && *p_ == '\0' && !all.empty ? all.digits : ALL_DIGITS;
    }

  private:
    struct Lead {
        unsigned digits; /* what a non-empty match can begin with */
        bool empty;      /* whether it can match nothing */
    };

    const char *p_;
    bool ok_ = true;

    Lead give_up()
    {
        ok_ = false;
        return {ALL_DIGITS, true};
    }

    Lead alternatives()
    {
        Lead all = sequence();

        while (ok_ && *p_ == '|') {
            p_++;
            Lead next = sequence();
            all.digits |= next.digits;
            all.empty = all.empty || next.empty;
        }
        return all;
    }

    Lead sequence()
    {
        Lead seq{0, true};

        while (ok_ && *p_ != '\0' && *p_ != '|' && *p_ != ')') {
            Lead piece = atom();

            quantifier(&piece);
            /* Only while all before it can match nothing can a piece begin the match. */
            if (seq.empty)
                seq.digits |= piece.digits;
            seq.empty = seq.empty && piece.empty;
        }
        return seq;
    }

    Lead atom()
    {
        char c = *p_++;

        if (c >= '0' && c <= '9')
            return {1u << (c - '0'), false};
        switch (c) {
        case '.':
            return {ALL_DIGITS, false};
        case '$':
            /* The end: it matches nothing, which is what matters here. */
            return {0, true};
        case '\\':
            if (*p_ != 'd')
                return give_up();
            p_++;
            return {ALL_DIGITS, false};
        case '[':
            return set();
        case '(': {
            if (*p_ == '?') {
                if (p_[1] != ':')
                    return give_up(); /* a look-around or flags */
                p_ += 2;
            }
            Lead inner = alternatives();
            if (!ok_ || *p_ != ')')
                return give_up();
            p_++;
            return inner;
        }
        default:
            return give_up();
        }
    }

    /* A class, after its '[': digits and ranges of them, and \d. */
    Lead set()
    {
        bool negated = *p_ == '^';
        unsigned digits = 0;

        if (negated)
            p_++;
        if (*p_ == ']')
            return give_up();
        while (*p_ != ']') {
            char lo = *p_++, hi = lo;

            if (lo == '\0' || lo == '[')
                return give_up();
            if (lo == '\\') {
                if (*p_ != 'd')
                    return give_up();
                p_++;
                digits = ALL_DIGITS;
                continue;
            }
            if (*p_ == '-' && p_[1] != ']') {
                hi = p_[1];
                if (hi == '\0' || hi == '\\' || hi == '[')
                    return give_up();
                p_ += 2;
            }
            for (char d = '0'; d <= '9'; d++)
                if (d >= lo && d <= hi)
                    digits |= 1u << (d - '0');
        }
        p_++;
        return {negated ? ALL_DIGITS : digits, false};
    }

    /* ?, *, +, {n}, {n,}, {n,m}, perhaps lazy or possessive; ?, * and {0,...} allow nothing. */
    void quantifier(Lead *l)
    {
        switch (*p_) {
        case '?':
        case '*':
            l->empty = true;
            p_++;
            break;
        case '+':
            p_++;
            break;
        case '{': {
            char *end;
            unsigned long least = strtoul(p_ + 1, &end, 10);

            if (end == p_ + 1 || p_[1] < '0' || p_[1] > '9') {
                give_up();
                return;
            }
            while ((*end >= '0' && *end <= '9') || *end == ',')
                end++;
            if (*end != '}') {
                give_up();
                return;
            }
            if (least == 0)
                l->empty = true;
            p_ = end + 1;
            break;
        }
        default:
            return;
        }
        if (*p_ == '?' || *p_ == '+')
            p_++;
    }
};

/* The first digits of N that a pattern leaves alone; an empty pattern, when it is never applied. */
unsigned safe_from(const std::string &pattern, bool empty_never_applies)
{
    if (pattern.empty() && empty_never_applies)
        return ALL_DIGITS;
    return ALL_DIGITS & ~LeadScan(pattern).digits();
}

struct CodeFacts {
    bool known;           /* a country calling code */
    char text[4];         /* its digits */
    unsigned quick_first; /* first digits of N, after '+' and this code, that nothing drops */
    uint32_t lengths;     /* bit n: a national number of n digits is possible */
};

struct RegionFacts {
    bool known;           /* a region of the metadata */
    int code;             /* the region's code when it is that code's main region, else 0 */
    unsigned quick_first; /* first digits of a number without '+' that nothing drops */
};

struct Facts {
    CodeFacts codes[1000];
    RegionFacts regions[26 * 26];
};

/* A region's place in Facts::regions, or -1 when it is not two capitals. */
int region_index(const char *region)
{
    if (region[0] < 'A' || region[0] > 'Z' || region[1] < 'A' || region[1] > 'Z' ||
        region[2] != '\0')
        return -1;
    return (region[0] - 'A') * 26 + (region[1] - 'A');
}

const PhoneMetadata *metadata_of(const PhoneMetadataCollection &all, const std::string &region,
                                 int code)
{
    /* Non-geographic codes (800, 882...) share the region "001" and differ by code. */
    for (const PhoneMetadata &m : all.metadata())
        if (m.id() == region && (region != "001" || m.country_code() == code))
            return &m;
    return nullptr;
}

/* What the quick reading needs, asked once of the metadata and the library. */
const Facts *learn()
{
    const PhoneNumberUtil &u = util();
    PhoneMetadataCollection all;
    Facts *f = new Facts();

    /* Unreadable: nothing is known, and every number goes the long way. */
    if (!all.ParseFromArray(i18n::phonenumbers::metadata_get(),
                            i18n::phonenumbers::metadata_size()))
        return f;
    for (int code = 1; code < 1000; code++) {
        CodeFacts &c = f->codes[code];
        std::string region;

        u.GetRegionCodeForCountryCode(code, &region);
        if (region == "ZZ")
            continue;
        c.known = true;
        snprintf(c.text, sizeof(c.text), "%d", code);
        const PhoneMetadata *m = metadata_of(all, region, code);
        if (m == nullptr)
            continue;
        c.quick_first = safe_from(m->national_prefix_for_parsing(), true) & ~1u;
        uint64_t national = 1;
        for (size_t len = 1; len <= NSN_MAX; len++, national *= 10) {
            PhoneNumber n;

            n.set_country_code(code);
            n.set_national_number(national);
            if (u.IsPossibleNumberWithReason(n) == PhoneNumberUtil::IS_POSSIBLE)
                c.lengths |= UINT32_C(1) << len;
        }
    }
    for (const PhoneMetadata &m : all.metadata()) {
        int i = region_index(m.id().c_str()), code = m.country_code();
        std::string owner;

        if (i < 0)
            continue;
        f->regions[i].known = true;
        if (code <= 0 || code >= 1000 || !f->codes[code].known)
            continue;
        u.GetRegionCodeForCountryCode(code, &owner);
        if (owner != m.id())
            continue;
        f->regions[i].code = code;
        f->regions[i].quick_first = safe_from(m.international_prefix(), false) &
                                    safe_from(m.national_prefix_for_parsing(), true) & ~1u;
    }
    return f;
}

const Facts &facts()
{
    static const Facts *const f = learn();
    return *f;
}

bool has_digit(unsigned set, char d)
{
    return (set >> (d - '0') & 1) != 0;
}

/* number (well formed) read in region into out, as Parse() would read it; false: ask Parse(). */
bool read_quickly(const char *number, const char *region, char *out)
{
    const Facts &f = facts();
    bool plus = number[0] == '+';
    const char *digits = plus ? number + 1 : number, *national = digits;
    size_t len = strlen(digits);
    int code = 0, r = region_index(region);

    /* An unknown region is refused, even with a '+'. */
    if (r < 0 || !f.regions[r].known || digits[0] == '0')
        return false;
    if (plus) {
        size_t code_len = 0;

        for (size_t i = 1; i <= 3 && i < len && code_len == 0; i++) {
            code = code * 10 + (digits[i - 1] - '0');
            if (f.codes[code].known)
                code_len = i;
        }
        if (code_len == 0)
            return false;
        national = digits + code_len;
        if (!has_digit(f.codes[code].quick_first, national[0]))
            return false;
    } else {
        if (f.regions[r].code == 0 || len < 3 || !has_digit(f.regions[r].quick_first, digits[0]))
            return false;
        code = f.regions[r].code;
        const char *own = f.codes[code].text;
        if (strncmp(digits, own, strlen(own)) == 0)
            return false;
    }
    size_t nlen = strlen(national), clen = strlen(f.codes[code].text);
    if (nlen < NSN_MIN || nlen > NSN_MAX || (f.codes[code].lengths >> nlen & 1) == 0 ||
        1 + clen + nlen > PHONE_E164_MAX)
        return false;
    out[0] = '+';
    memcpy(out + 1, f.codes[code].text, clen);
    memcpy(out + 1 + clen, national, nlen + 1);
    return true;
}

} // namespace

extern "C" int phone_normalise(const char *number, const char *region, char *out, size_t outlen,
                               const char **why)
{
    const char *reason;
    int rc = -EINVAL;

    if (out != nullptr && outlen > 0)
        out[0] = '\0';
    if (out == nullptr || outlen <= PHONE_E164_MAX) {
        reason = "output buffer too small";
    } else if (number == nullptr || !well_formed(number)) {
        reason = "phone number is not a \"+\" or nothing followed by digits";
    } else if (region == nullptr) {
        reason = UNKNOWN_REGION;
    } else {
        try {
            std::string e;

            if (util().GetCountryCodeForRegion(region) == 0) {
                reason = UNKNOWN_REGION;
            } else if ((reason = normalise(number, region, &e)) == nullptr) {
                memcpy(out, e.c_str(), e.size() + 1);
                return 0;
            }
        } catch (const std::bad_alloc &) {
            reason = "out of memory";
            rc = -ENOMEM;
        } catch (const std::exception &) {
            /* The same number would fail the same way again: it is a bad one, not a retry. */
            reason = "libphonenumber failed on the number";
        }
    }
    if (why != nullptr)
        *why = reason;
    return rc;
}

extern "C" int phone_normalise_quick(const char *number, const char *region, char *out,
                                     size_t outlen)
{
    if (number == nullptr || region == nullptr || out == nullptr || outlen <= PHONE_E164_MAX ||
        !well_formed(number))
        return 0;
    try {
        return read_quickly(number, region, out) ? 1 : 0;
    } catch (const std::exception &) {
        return 0;
    }
}

extern "C" int phone_prepare(void)
{
    try {
        facts();
        return 0;
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (const std::exception &) {
        return -EIO;
    }
}

extern "C" int phone_region_code(const char *region)
{
    if (region == nullptr)
        return 0;
    try {
        return util().GetCountryCodeForRegion(region);
    } catch (const std::exception &) {
        return 0;
    }
}

extern "C" int phone_code_region(int code, char *out, size_t outlen)
{
    std::string region;

    if (out == nullptr || outlen < PHONE_REGION_SIZE)
        return -EINVAL;
    try {
        util().GetRegionCodeForCountryCode(code, &region);
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (const std::exception &) {
        return -ENOENT;
    }
    /* "ZZ": no region has the code; "001": a non-geographic code, which no one dials nationally. */
    if (region.size() != 2 || region == "ZZ")
        return -ENOENT;
    memcpy(out, region.c_str(), PHONE_REGION_SIZE);
    return 0;
}
