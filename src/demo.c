/* SPDX-License-Identifier: MIT */
/* demo.c -- an embedded mock Kafka cluster with a generator of realistic CRM traffic. */
#include "demo.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "clock.h"
#include "log.h"

#define BROKERS             3
#define INPUT_PARTITIONS    4
#define OUTPUT_PARTITIONS   4
#define IDENTITY_PARTITIONS 2
/* The generator wakes 100 times a second, so even low rates come out evenly spread. */
#define TICKS_PER_S 100
#define TICK_NS     (1000000000L / TICKS_PER_S)
/* Far above what a laptop demo needs; it keeps rate * ticks well inside 64 bits. */
#define MAX_RATE      1000000
#define FLUSH_MS      5000
#define QUEUE_WAIT_MS 10
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

struct demo {
    rd_kafka_t *host; /* hosts the mock cluster */
    rd_kafka_mock_cluster_t *mock;
    char *bootstraps;
    rd_kafka_t *producer; /* the generator's; NULL when rate is 0 */
    char **topics;        /* the input topics, copied: cfg may be reloaded */
    size_t ntopics;
    int rate;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    atomic_uint_fast64_t produced;
    atomic_uint_fast64_t poison;
    atomic_uint_fast64_t failed;
    /* Generator thread only from here. */
    uint64_t rng;
    uint64_t seq;
    char run[16]; /* makes ids unique across runs */
    char *buf;    /* the message being built; grows to fit */
    size_t cap;
};

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    log_write(level, "demo: %s: %s", fac, buf);
}

/* Counts only what the cluster acknowledged, so demo_produced() is what a reader can find. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct demo *d = opaque;

    (void)rk;
    if (m->err) {
        /* One warning is enough to explain a stalled demo; the rest go to debug. */
        if (atomic_fetch_add(&d->failed, 1) == 0)
            log_write(LOG_WARNING, "demo: delivery failed: %s", rd_kafka_err2str(m->err));
        else
            log_write(LOG_DEBUG, "demo: delivery failed: %s", rd_kafka_err2str(m->err));
        return;
    }
    atomic_fetch_add(&d->produced, 1);
    if (m->_private)
        atomic_fetch_add(&d->poison, 1);
}

/* xorshift64*: statistical quality is all a demo needs, and it is per-thread state. */
static uint32_t rnd(struct demo *d, uint32_t n)
{
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return (uint32_t)((d->rng * 0x2545F4914F6CDD1DULL) >> 32) % n;
}

/* Format into d->buf, growing it so that nothing is ever cut short. Returns the length or -1. */
static int build(struct demo *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int build(struct demo *d, const char *fmt, ...)
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

static int email(struct demo *d, uint64_t id)
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

static int whatsapp(struct demo *d, uint64_t id)
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

static int form(struct demo *d, uint64_t id)
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
static int poison(struct demo *d, uint64_t id)
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

/* Build and send one message. Returns 0, or -1 when it was not queued. */
static int produce_one(struct demo *d)
{
    uint64_t id = ++d->seq;
    bool bad = rnd(d, 1000) < POISON_PER_MILLE;
    unsigned kind = rnd(d, 100);
    const char *topic = d->topics[rnd(d, (uint32_t)d->ntopics)];
    char key[64];
    rd_kafka_resp_err_t err;
    int n;

    if (bad)
        n = poison(d, id);
    else if (kind < EMAIL_PERCENT)
        n = email(d, id);
    else if (kind < EMAIL_PERCENT + WHATSAPP_PERCENT)
        n = whatsapp(d, id);
    else
        n = form(d, id);
    if (n < 0)
        return -1;
    snprintf(key, sizeof(key), "%s-%" PRIu64, d->run, id);
    for (;;) {
        /* No partition given: the partitioner hashes the unique key, which spreads at random. */
        err = rd_kafka_producev(
            d->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE(d->buf, (size_t)n), RD_KAFKA_V_OPAQUE(bad ? (void *)d : NULL),
            RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || atomic_load(&d->stop))
            break;
        rd_kafka_poll(d->producer, QUEUE_WAIT_MS);
    }
    if (err) {
        log_write(LOG_DEBUG, "demo: produce to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static void *generate(void *arg)
{
    struct demo *d = arg;
    struct timespec next;
    sigset_t block;
    uint64_t ticks = 0, sent = 0, due;

    /* The daemon's signals belong to its main thread, whatever mask we were started with. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, NULL);

    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!atomic_load(&d->stop)) {
        ticks++;
        due = (uint64_t)d->rate * ticks / TICKS_PER_S;
        /* Fallen more than a second behind (a full queue): drop the backlog, do not burst. */
        if (due - sent > (uint64_t)d->rate)
            sent = due - (uint64_t)d->rate;
        while (sent < due && !atomic_load(&d->stop)) {
            produce_one(d);
            sent++;
        }
        rd_kafka_poll(d->producer, 0);
        next.tv_nsec += TICK_NS;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        /* Absolute deadlines keep the pace from drifting by the time spent producing. */
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
    }
    return NULL;
}

/* Make the input, output and dead-letter topics; an output that repeats a name is made once. */
static int make_topics(struct demo *d, const struct config *cfg, char *err, size_t errlen)
{
    const struct {
        const char *name;
        int partitions;
    } outputs[] = {
        {cfg->output.tickets_topic, OUTPUT_PARTITIONS},
        {cfg->output.responses_topic, OUTPUT_PARTITIONS},
        {cfg->output.identities_topic, IDENTITY_PARTITIONS},
        {cfg->output.dlq_topic, OUTPUT_PARTITIONS},
    };
    const size_t noutputs = sizeof(outputs) / sizeof(outputs[0]);
    rd_kafka_resp_err_t rc;

    for (size_t i = 0; i < cfg->kafka.ntopics + noutputs; i++) {
        bool input = i < cfg->kafka.ntopics;
        const char *name = input ? cfg->kafka.topics[i] : outputs[i - cfg->kafka.ntopics].name;
        int partitions = input ? INPUT_PARTITIONS : outputs[i - cfg->kafka.ntopics].partitions;

        if (!name)
            continue;
        rc = rd_kafka_mock_topic_create(d->mock, name, partitions, 1);
        if (rc && rc != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            snprintf(err, errlen, "demo: create topic %s: %s", name, rd_kafka_err2str(rc));
            return -1;
        }
    }
    return 0;
}

static rd_kafka_t *new_producer(struct demo *d, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", d->bootstraps, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "client.id", "crm-demo-generator", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr))) {
        snprintf(err, errlen, "demo: producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, d);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        snprintf(err, errlen, "demo: producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Everything that makes threads; the caller has blocked the daemon's signals. */
static int start_threads(struct demo *d, struct config *cfg, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    int rc;

    /* The host handle only carries the cluster; its own chatter is errors only. */
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr))) {
        snprintf(err, errlen, "demo: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    d->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!d->host) {
        snprintf(err, errlen, "demo: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    d->mock = rd_kafka_mock_cluster_new(d->host, BROKERS);
    if (!d->mock) {
        snprintf(err, errlen, "demo: cannot create the mock cluster");
        return -1;
    }
    if (make_topics(d, cfg, err, errlen) < 0)
        return -1;
    d->bootstraps = strdup(rd_kafka_mock_cluster_bootstraps(d->mock));
    if (!d->bootstraps) {
        snprintf(err, errlen, "demo: out of memory");
        return -1;
    }
    if (d->rate == 0)
        return 0;
    d->producer = new_producer(d, err, errlen);
    if (!d->producer)
        return -1;
    rc = pthread_create(&d->thread, NULL, generate, d);
    if (rc) {
        snprintf(err, errlen, "demo: generator thread: %s", strerror(rc));
        return -1;
    }
    d->running = true;
    return 0;
}

struct demo *demo_start(struct config *cfg, int rate, char *err, size_t errlen)
{
    struct demo *d;
    struct timespec ts;
    sigset_t block, old;
    char *brokers;
    int rc;

    if (rate < 0 || rate > MAX_RATE) {
        snprintf(err, errlen, "demo: rate %d is not within 0..%d messages per second", rate,
                 MAX_RATE);
        return NULL;
    }
    if (!cfg || cfg->kafka.ntopics == 0) {
        snprintf(err, errlen, "demo: no input topics");
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d || !(d->topics = calloc(cfg->kafka.ntopics, sizeof(*d->topics)))) {
        free(d);
        snprintf(err, errlen, "demo: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < cfg->kafka.ntopics; i++) {
        if (!(d->topics[i] = strdup(cfg->kafka.topics[i]))) {
            snprintf(err, errlen, "demo: out of memory");
            return demo_stop(d);
        }
        d->ntopics++;
    }
    d->rate = rate;
    atomic_init(&d->stop, false);
    atomic_init(&d->produced, 0);
    atomic_init(&d->poison, 0);
    atomic_init(&d->failed, 0);
    clock_gettime(CLOCK_REALTIME, &ts);
    d->rng = (((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16)) | 1;
    snprintf(d->run, sizeof(d->run), "%08" PRIx32, (uint32_t)(d->rng ^ d->rng >> 32));

    /*
     * librdkafka's threads and ours inherit the creator's signal mask: block
     * the daemon's signals while they are made, so only the main thread takes them.
     */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rc = start_threads(d, cfg, err, errlen);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0)
        return demo_stop(d);

    brokers = strdup(d->bootstraps);
    if (!brokers) {
        snprintf(err, errlen, "demo: out of memory");
        return demo_stop(d);
    }
    free(cfg->kafka.brokers);
    cfg->kafka.brokers = brokers;
    return d;
}

const char *demo_bootstraps(const struct demo *d)
{
    return d->bootstraps;
}

uint64_t demo_produced(const struct demo *d)
{
    return atomic_load(&d->produced);
}

uint64_t demo_poison(const struct demo *d)
{
    return atomic_load(&d->poison);
}

struct demo *demo_stop(struct demo *d)
{
    rd_kafka_resp_err_t err;

    if (!d)
        return NULL;
    if (d->running) {
        atomic_store(&d->stop, true);
        pthread_join(d->thread, NULL);
    }
    if (d->producer) {
        err = rd_kafka_flush(d->producer, FLUSH_MS);
        if (err)
            log_write(LOG_WARNING, "demo: %d messages not delivered at stop: %s",
                      rd_kafka_outq_len(d->producer), rd_kafka_err2str(err));
        rd_kafka_destroy(d->producer);
    }
    if (d->mock)
        rd_kafka_mock_cluster_destroy(d->mock);
    if (d->host)
        rd_kafka_destroy(d->host);
    for (size_t i = 0; i < d->ntopics; i++)
        free(d->topics[i]);
    free(d->topics);
    free(d->bootstraps);
    free(d->buf);
    free(d);
    return NULL;
}
