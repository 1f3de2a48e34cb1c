/* SPDX-License-Identifier: MIT */
/* phone.cc -- phone numbers to E.164 by libphonenumber: the one C++ unit, behind phone.h. */
#include "phone.h"

#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include <phonenumbers/logger.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

using i18n::phonenumbers::NullLogger;
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
