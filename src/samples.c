/* SPDX-License-Identifier: MIT */
/* samples.c -- the demo's sample traffic: e-mails, WhatsApp messages, forms and poison. */
#include "samples.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

/* Poison pills per 1,000 messages; of the rest, e-mail and WhatsApp shares (forms get the rest). */
#define POISON_PER_MILLE 20
#define EMAIL_PERCENT    45
#define WHATSAPP_PERCENT 35

/*
 * Texts in each language. Every string here goes into JSON as it is, so it is
 * written already escaped: quotes as \" and line breaks as \n.
 */
struct language {
    const char *subjects[3];
    const char *bodies[3]; /* e-mail bodies */
    const char *texts[3];  /* WhatsApp texts and form messages */
};

enum { ES, DE, FR, JA, RU, AR, PT, EN, LANGUAGES };

static const struct language languages[LANGUAGES] = {
    [ES] = {{"Pedido retrasado", "¿Dónde está mi factura?", "Cambio de dirección de envío"},
            {"Hola,\\nmi pedido aún no ha llegado. ¿Podéis revisarlo?\\nGracias.",
             "Buenos días:\\nNecesito la factura del mes pasado para la contabilidad.",
             "Hola, me he mudado a la calle Añil 12, 3.º B. ¿Podéis actualizarlo?"},
            {"¡Hola! ¿Mi pedido ya salió?", "Necesito ayuda con la contraseña 🙏",
             "¿Tenéis tienda en Sevilla?"}},
    [DE] = {{"Rückerstattung für Bestellung", "Frage zur Lieferung", "Kündigung meines Abos"},
            {"Guten Tag,\\nich möchte die Rücksendung vom Dienstag erstatten lassen.\\nGrüße",
             "Hallo,\\nwann wird meine Bestellung geliefert? Die Sendungsverfolgung zeigt "
             "nichts an.",
             "Sehr geehrte Damen und Herren,\\nhiermit kündige ich mein Abonnement zum "
             "Monatsende."},
            {"Hallo, ist meine Lieferung schon unterwegs?",
             "Größe M ist ausverkauft – kommt "
             "sie wieder?",
             "Danke für die schnelle Hilfe!"}},
    [FR] = {{"Problème de connexion", "Facture erronée", "Question sur la garantie"},
            {"Bonjour,\\nje n'arrive plus à me connecter à mon compte depuis hier.\\nCordialement",
             "Bonjour,\\nle montant de la facture n° 4711 ne correspond pas à ma commande.",
             "Bonjour, mon appareil est tombé en panne après 11 mois : est-il garanti ?"},
            {"Bonjour ! Ma commande est-elle expédiée ?", "Merci beaucoup, ça marche très bien 👍",
             "Pouvez-vous me rappeler cet après-midi ?"}},
    [JA] = {{"注文の配送について", "請求書の再発行", "パスワードを忘れました"},
            {"お世話になっております。\\n注文した商品がまだ届いておりません。\\nご確認をお願いしま"
             "す。",
             "先月分の請求書を再発行していただけますか。",
             "ログインできません。パスワードの再設定方法を教えてください。"},
            {"こんにちは、注文の状況を教えてください", "ありがとうございます！",
             "明日の午前中に電話してもいいですか？"}},
    [RU] = {{"Заказ не доставлен", "Возврат средств", "Вопрос по тарифу"},
            {"Здравствуйте!\\nМой заказ должен был прийти вчера, но его до сих пор нет.",
             "Добрый день,\\nпрошу вернуть деньги за отменённый заказ.\\nСпасибо.",
             "Подскажите, пожалуйста, чем отличается тариф «Бизнес» от «Стандарт»?"},
            {"Здравствуйте, где мой заказ?", "Спасибо, всё получилось!",
             "Можно поменять адрес доставки?"}},
    [AR] = {{"استفسار عن الطلب", "مشكلة في الدفع", "طلب استرداد"},
            {"مرحباً،\\nلم يصلني طلبي حتى الآن. هل يمكنكم التحقق؟\\nشكراً",
             "السلام عليكم،\\nتم خصم المبلغ مرتين من بطاقتي.",
             "أرغب في إرجاع المنتج واسترداد المبلغ."},
            {"مرحباً، متى يصل طلبي؟", "شكراً جزيلاً على المساعدة", "هل يمكنني تغيير العنوان؟"}},
    [PT] = {{"Atualização do pedido", "Cobrança em duplicidade", "Troca de produto"},
            {"Olá,\\nmeu pedido está parado há uma semana. Podem verificar?\\nObrigado.",
             "Boa tarde,\\nfui cobrado duas vezes no cartão. Aguardo o estorno.",
             "Olá, o tamanho não serviu. Como faço a troca?"},
            {"Oi! Meu pedido já saiu?", "Obrigada pela atenção 😊",
             "Vocês entregam em São Paulo no sábado?"}},
    [EN] = {{"Order #4711 is \\\"late\\\"", "Can't log in", "Question about pricing"},
            {"Hi,\\nmy order was due on Monday and still hasn't arrived.\\nThanks,",
             "Hello,\\nthe password reset link says \\\"expired\\\" every time.",
             "Hi there, do you offer a discount for non-profits?"},
            {"Hi, any update on my order?", "Thanks, that fixed it!",
             "Could someone call me back today?"}},
};

/*
 * Recurring customers: each has one address and one number, written in
 * several spellings that normalise to the same identifier, so a form that
 * links an e-mail to a phone shows up later as a WhatsApp from that phone
 * spelled differently.
 */
struct customer {
    const char *name;
    int lang;
    const char *emails[2];
    const char *phones[3];
};

static const struct customer customers[] = {
    {"María José García",
     ES,
     {"maria.garcia@example.es", "  Maria.Garcia@Example.ES "},
     {"+34 612 345 678", "0034 612 34 56 78", "+34612345678"}},
    {"Jürgen Müller",
     DE,
     {"juergen.mueller@beispiel.de", " JUERGEN.MUELLER@BEISPIEL.DE"},
     {"+49 151 23456789", "0049 151 2345 6789", "+49-151-234-567-89"}},
    {"Françoise Dubois",
     FR,
     {"francoise.dubois@exemple.fr", "Francoise.Dubois@Exemple.FR  "},
     {"+33 6 12 34 56 78", "0033 6 12 34 56 78", "+33.6.12.34.56.78"}},
    {"山田 太郎",
     JA,
     {"taro.yamada@example.jp", "TARO.YAMADA@EXAMPLE.JP"},
     {"+81 90-1234-5678", "0081 90 1234 5678", "+819012345678"}},
    {"Дмитрий Иванов",
     RU,
     {"d.ivanov@example.ru", " D.Ivanov@Example.RU "},
     {"+7 916 123-45-67", "007 916 123 45 67", "+7 (916) 123-45-67"}},
    {"فاطمة الزهراء",
     AR,
     {"fatima.z@example.ae", "Fatima.Z@EXAMPLE.AE"},
     {"+971 50 123 4567", "00971 50 123 4567", "+971501234567"}},
    {"João Gonçalves",
     PT,
     {"joao.goncalves@exemplo.com.br", "  JOAO.GONCALVES@EXEMPLO.COM.BR"},
     {"+55 11 91234-5678", "0055 11 91234 5678", "+55 (11) 91234-5678"}},
    {"Emily O'Brien",
     EN,
     {"emily.obrien@example.com", "Emily.OBrien@Example.com "},
     {"+1 (555) 010-0123", "555.010.0123", "001 555 010 0123"}},
    {"Oliver Smith",
     EN,
     {"oliver.smith@example.co.uk", " OLIVER.SMITH@EXAMPLE.CO.UK "},
     {"0044 20 7946 0000", "+44 20 7946 0000", "+44 (20) 7946-0000"}},
    {"Sebastián Núñez",
     ES,
     {"sebastian.nunez@example.mx", "Sebastian.Nunez@Example.MX"},
     {"555.010.0199", "+1 555 010 0199", "(555) 010-0199"}},
    {"Chloé Lefèvre",
     FR,
     {"chloe.lefevre@example.be", " CHLOE.LEFEVRE@example.be"},
     {"+32 470 12 34 56", "0032 470 123 456", "+32470123456"}},
    {"Ольга Смирнова",
     RU,
     {"olga.smirnova@example.kz", "Olga.Smirnova@EXAMPLE.KZ  "},
     {"+7 701 555 01 23", "007 701 555 0123", "+77015550123"}},
};
#define NCUSTOMERS (sizeof(customers) / sizeof(customers[0]))

/* First-time contacts get a name from here and a generated address or number. */
static const struct {
    const char *name;
    int lang;
} guests[] = {
    {"Ana", ES},   {"Lukas", DE}, {"Inès", FR},        {"さくら", JA},
    {"Ольга", RU}, {"يوسف", AR},  {"Thiago", PT},      {"Jack", EN},
    {"Zoë", EN},   {"Björn", DE}, {"Ñandú Pérez", ES}, {"Conceição", PT},
};
#define NGUESTS (sizeof(guests) / sizeof(guests[0]))

static const char *const form_ids[] = {"contact", "signup", "quote-request", "callback"};
#define NFORMS (sizeof(form_ids) / sizeof(form_ids[0]))

/* xorshift64*: statistical quality is all a demo needs, and it is per-thread state. */
static uint32_t rnd(struct samples *d, uint32_t n)
{
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return (uint32_t)((d->rng * 0x2545F4914F6CDD1DULL) >> 32) % n;
}

/* Format into d->buf, growing it so that nothing is ever cut short. Returns the length or -1. */
static int build(struct samples *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int build(struct samples *d, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(d->buf, d->cap, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= d->cap) {
        size_t want = (size_t)n + 1;
        char *p = realloc(d->buf, want);

        if (!p)
            return -1;
        d->buf = p;
        d->cap = want;
        va_start(ap, fmt);
        n = vsnprintf(d->buf, d->cap, fmt, ap);
        va_end(ap);
    }
    return n;
}

static void iso_now(char *out, size_t len)
{
    if (!clock_iso8601(NULL, clock_real_ms(), out, len))
        snprintf(out, len, "1970-01-01T00:00:00.000Z");
}

static int email(struct samples *d, uint64_t id)
{
    char when[32], guest[64];
    const char *from, *name;
    const struct language *l;

    iso_now(when, sizeof(when));
    /* Six in ten e-mails come from a recurring customer. */
    if (rnd(d, 10) < 6) {
        const struct customer *c = &customers[rnd(d, (uint32_t)NCUSTOMERS)];

        from = c->emails[rnd(d, 2)];
        name = c->name;
        l = &languages[c->lang];
    } else {
        unsigned g = rnd(d, (uint32_t)NGUESTS);

        snprintf(guest, sizeof(guest), "%sGuest%u@Example.net", rnd(d, 2) ? " " : "",
                 rnd(d, 100000));
        from = guest;
        name = guests[g].name;
        l = &languages[guests[g].lang];
    }
    return build(d,
                 "{\"message_type\":\"email_received\",\"message_id\":\"msg-%s-%" PRIu64 "\","
                 "\"from\":\"%s\",\"to\":\"support@crm.example\",\"name\":\"%s\","
                 "\"subject\":\"%s\",\"body\":\"%s\",\"received_at\":\"%s\"}",
                 d->run, id, from, name, l->subjects[rnd(d, 3)], l->bodies[rnd(d, 3)], when);
}

static int whatsapp(struct samples *d, uint64_t id)
{
    char guest[64];
    const char *from, *name;
    const struct language *l;

    /* Most WhatsApp traffic is from known numbers, some of which a form has linked. */
    if (rnd(d, 10) < 7) {
        const struct customer *c = &customers[rnd(d, (uint32_t)NCUSTOMERS)];

        from = c->phones[rnd(d, 3)];
        name = c->name;
        l = &languages[c->lang];
    } else {
        unsigned g = rnd(d, (uint32_t)NGUESTS);

        snprintf(guest, sizeof(guest), "+1 555 01%u %04u", rnd(d, 10), rnd(d, 10000));
        from = guest;
        name = guests[g].name;
        l = &languages[guests[g].lang];
    }
    return build(d,
                 "{\"type\":\"whatsapp_received\",\"message_id\":\"wamid.%s.%" PRIu64 "\","
                 "\"from\":\"%s\",\"profile_name\":\"%s\",\"text\":\"%s\","
                 "\"timestamp\":\"%lld\"}",
                 d->run, id, from, name, l->texts[rnd(d, 3)], (long long)time(NULL));
}

static int form(struct samples *d, uint64_t id)
{
    char when[32];
    const struct customer *c = &customers[rnd(d, (uint32_t)NCUSTOMERS)];
    const char *form_id = form_ids[rnd(d, (uint32_t)NFORMS)];
    const char *mail = c->emails[rnd(d, 2)];
    const char *phone = c->phones[rnd(d, 3)];
    const char *text = languages[c->lang].texts[rnd(d, 3)];
    unsigned pick = rnd(d, 10);

    iso_now(when, sizeof(when));
    /* Half the forms give both, which is what links a phone to an e-mail customer. */
    if (pick < 5)
        return build(d,
                     "{\"message_type\":\"form_submitted\",\"form_id\":\"%s\","
                     "\"submission_id\":\"sub-%s-%" PRIu64 "\",\"submitted_at\":\"%s\","
                     "\"fields\":{\"email\":\"%s\",\"phone\":\"%s\",\"name\":\"%s\","
                     "\"message\":\"%s\"}}",
                     form_id, d->run, id, when, mail, phone, c->name, text);
    if (pick < 8)
        return build(d,
                     "{\"message_type\":\"form_submitted\",\"form_id\":\"%s\","
                     "\"submission_id\":\"sub-%s-%" PRIu64 "\",\"submitted_at\":\"%s\","
                     "\"fields\":{\"email\":\"%s\",\"name\":\"%s\",\"message\":\"%s\"}}",
                     form_id, d->run, id, when, mail, c->name, text);
    return build(d,
                 "{\"message_type\":\"form_submitted\",\"form_id\":\"%s\","
                 "\"submission_id\":\"sub-%s-%" PRIu64 "\",\"submitted_at\":\"%s\","
                 "\"fields\":{\"phone\":\"%s\",\"name\":\"%s\",\"message\":\"%s\"}}",
                 form_id, d->run, id, when, phone, c->name, text);
}

/* One of each kind of poison the daemon must dead-letter rather than choke on. */
static int poison(struct samples *d, uint64_t id)
{
    switch (rnd(d, 5)) {
    case 0: /* invalid JSON: cut off mid-object */
        return build(d,
                     "{\"message_type\":\"email_received\",\"message_id\":\"msg-%s-%" PRIu64
                     "\",\"from\":",
                     d->run, id);
    case 1: /* valid JSON, not an object */
        return build(d, "[\"email_received\",\"msg-%s-%" PRIu64 "\"]", d->run, id);
    case 2: /* a type nobody handles */
        return build(d,
                     "{\"message_type\":\"fax_received\",\"message_id\":\"fax-%s-%" PRIu64 "\","
                     "\"from\":\"+1 555 010 0123\"}",
                     d->run, id);
    case 3: /* a required field is missing */
        return build(d,
                     "{\"message_type\":\"email_received\",\"message_id\":\"msg-%s-%" PRIu64 "\","
                     "\"subject\":\"no sender\"}",
                     d->run, id);
    default: /* an address that is not one */
        return build(d,
                     "{\"message_type\":\"email_received\",\"message_id\":\"msg-%s-%" PRIu64 "\","
                     "\"from\":\"not an address\",\"subject\":\"hi\"}",
                     d->run, id);
    }
}

void samples_init(struct samples *s, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->rng = seed | 1;
    snprintf(s->run, sizeof(s->run), "%08" PRIx32, (uint32_t)(s->rng ^ s->rng >> 32));
}

void samples_fini(struct samples *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

uint32_t samples_pick(struct samples *s, uint32_t n)
{
    return rnd(s, n);
}

const char *samples_run(const struct samples *s)
{
    return s->run;
}

int samples_next(struct samples *s, uint64_t id, bool *bad)
{
    unsigned kind;

    *bad = rnd(s, 1000) < POISON_PER_MILLE;
    kind = rnd(s, 100);
    if (*bad)
        return poison(s, id);
    if (kind < EMAIL_PERCENT)
        return email(s, id);
    if (kind < EMAIL_PERCENT + WHATSAPP_PERCENT)
        return whatsapp(s, id);
    return form(s, id);
}
