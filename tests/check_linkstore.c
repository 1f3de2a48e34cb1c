/* SPDX-License-Identifier: MIT */
/* check_linkstore.c -- the LMDB identity store alone: links, positions, damage, a full map. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "identity.h"
#include "linkstore.h"

#define MIB  ((size_t)1 << 20)
#define CUS1 "cus_0123456789abcdef"
#define CUS2 "cus_fedcba9876543210"

static char dir[64];
static char note[256], err[512];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/check_linkstore.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct linkstore *open_store(size_t max)
{
    struct linkstore *s = linkstore_open(dir, max, note, sizeof(note), err, sizeof(err));

    ck_assert_msg(s != NULL, "%s", err);
    return s;
}

/* The customer of phone in s, or "" (one buffer: read it before the next call). */
static const char *get(struct linkstore *s, const char *phone)
{
    static char id[IDENTITY_ID_LEN + 1];
    int rc = linkstore_get(s, phone, id, sizeof(id));

    ck_assert_int_ge(rc, 0);
    if (rc == 0)
        id[0] = '\0';
    return id;
}

static void write_file(const char *name, const void *data, size_t len)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static const struct linkstore_origin origin = {"cluster-a", "crm.identities", 4};

START_TEST(test_put_get_delete)
{
    struct linkstore *s = open_store(16 * MIB);

    ck_assert_str_eq(note, "");
    ck_assert_str_eq(get(s, "+15550100001"), "");
    ck_assert_int_eq(linkstore_put(s, "+15550100001", CUS1), 0);
    ck_assert_int_eq(linkstore_put(s, "+15550100002", CUS1), 0);
    /* Not visible before the commit: lookups read the last committed state. */
    ck_assert_str_eq(get(s, "+15550100001"), "");
    ck_assert_uint_eq(linkstore_count(s), 0);
    ck_assert_int_eq(linkstore_commit(s), 0);
    ck_assert_str_eq(get(s, "+15550100001"), CUS1);
    ck_assert_uint_eq(linkstore_count(s), 2);

    /* A later link for the phone replaces the earlier; a removal removes it. */
    ck_assert_int_eq(linkstore_put(s, "+15550100001", CUS2), 0);
    ck_assert_int_eq(linkstore_del(s, "+15550100002"), 0);
    ck_assert_int_eq(linkstore_del(s, "+15550100003"), 0); /* absent: nothing to do */
    ck_assert_int_eq(linkstore_commit(s), 0);
    ck_assert_str_eq(get(s, "+15550100001"), CUS2);
    ck_assert_str_eq(get(s, "+15550100002"), "");
    ck_assert_uint_eq(linkstore_count(s), 1);

    /* An aborted transaction leaves nothing. */
    ck_assert_int_eq(linkstore_put(s, "+15550100009", CUS1), 0);
    linkstore_abort(s);
    ck_assert_int_eq(linkstore_commit(s), 0);
    ck_assert_str_eq(get(s, "+15550100009"), "");

    /* Wrong lengths are refused, and a commit with nothing open is fine. */
    ck_assert_int_eq(linkstore_put(s, "+1234567890123456", CUS1), -EINVAL);
    ck_assert_int_eq(linkstore_put(s, "", CUS1), -EINVAL);
    ck_assert_int_eq(linkstore_put(s, "+15550100001", "cus_short"), -EINVAL);
    ck_assert_int_eq(linkstore_set_position(s, -1, 0), -EINVAL);
    ck_assert_int_eq(linkstore_commit(s), 0);
    ck_assert_uint_gt(linkstore_bytes(s), 0);
    ck_assert_uint_eq(linkstore_max_bytes(s), 16 * MIB);
    ck_assert_ptr_null(linkstore_close(s));
    ck_assert_ptr_null(linkstore_close(NULL));
}
END_TEST

/* Links and positions survive a reopen, exactly as committed together. */
START_TEST(test_reopen_positions)
{
    struct linkstore *s = open_store(16 * MIB);
    struct linkstore_origin o;

    ck_assert_int_eq(linkstore_origin(s, &o), -ENOENT);
    ck_assert_int_eq(linkstore_position(s, 0), -1);
    ck_assert_int_eq(linkstore_reset(s, &origin), 0);
    ck_assert_int_eq(linkstore_put(s, "+442079460958", CUS1), 0);
    ck_assert_int_eq(linkstore_set_position(s, 0, 17), 0);
    ck_assert_int_eq(linkstore_set_position(s, 3, INT64_MAX), 0);
    ck_assert_int_eq(linkstore_commit(s), 0);
    /* Uncommitted at close: thrown away with its position. */
    ck_assert_int_eq(linkstore_put(s, "+442079460959", CUS1), 0);
    ck_assert_int_eq(linkstore_set_position(s, 0, 18), 0);
    linkstore_close(s);

    s = open_store(16 * MIB);
    ck_assert_str_eq(note, "");
    ck_assert_int_eq(linkstore_origin(s, &o), 0);
    ck_assert_str_eq(o.cluster, "cluster-a");
    ck_assert_str_eq(o.topic, "crm.identities");
    ck_assert_int_eq(o.partitions, 4);
    ck_assert_int_eq(linkstore_position(s, 0), 17);
    ck_assert_int_eq(linkstore_position(s, 1), -1);
    ck_assert(linkstore_position(s, 3) == INT64_MAX);
    ck_assert_str_eq(get(s, "+442079460958"), CUS1);
    ck_assert_str_eq(get(s, "+442079460959"), "");
    ck_assert_uint_eq(linkstore_count(s), 1);

    /* A reset empties links and positions and records the new origin. */
    struct linkstore_origin other = {"", "crm.identities", 8};
    ck_assert_int_eq(linkstore_reset(s, &other), 0);
    ck_assert_int_eq(linkstore_commit(s), 0);
    ck_assert_uint_eq(linkstore_count(s), 0);
    ck_assert_int_eq(linkstore_position(s, 0), -1);
    ck_assert_int_eq(linkstore_origin(s, &o), 0);
    ck_assert_str_eq(o.cluster, "");
    ck_assert_int_eq(o.partitions, 8);
    linkstore_close(s);
}
END_TEST

/* A file LMDB cannot read is replaced by an empty store, and the note says why. */
START_TEST(test_corrupt_file_replaced)
{
    static char junk[64 * 1024];
    struct linkstore *s;

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 131 + 7);
    write_file("data.mdb", junk, sizeof(junk));
    s = open_store(16 * MIB);
    ck_assert_msg(strstr(note, "unreadable") != NULL, "note: %s", note);
    ck_assert_uint_eq(linkstore_count(s), 0);
    ck_assert_int_eq(linkstore_put(s, "+15550100001", CUS1), 0);
    ck_assert_int_eq(linkstore_commit(s), 0);
    linkstore_close(s);
    s = open_store(16 * MIB);
    ck_assert_str_eq(note, "");
    ck_assert_str_eq(get(s, "+15550100001"), CUS1);
    linkstore_close(s);
}
END_TEST

/* A store of another format (here: another format string) is emptied, with a note. */
START_TEST(test_foreign_format_replaced)
{
    struct linkstore *s = open_store(16 * MIB);

    ck_assert_int_eq(linkstore_put(s, "+15550100001", CUS1), 0);
    ck_assert_int_eq(linkstore_commit(s), 0);
    linkstore_close(s);

    /* Rewrite the format record in place: same length, another version. */
    char path[128], *buf;
    FILE *f;
    long n;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    f = fopen(path, "r+");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    buf = malloc((size_t)n);
    ck_assert_ptr_nonnull(buf);
    rewind(f);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    char *hit = memmem(buf, (size_t)n, "crm-consumerd links 1", 21);
    ck_assert_ptr_nonnull(hit);
    hit[20] = '9';
    rewind(f);
    ck_assert_uint_eq(fwrite(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    free(buf);

    s = open_store(16 * MIB);
    ck_assert_msg(strstr(note, "another format") != NULL, "note: %s", note);
    ck_assert_uint_eq(linkstore_count(s), 0);
    ck_assert_str_eq(get(s, "+15550100001"), "");
    linkstore_close(s);
}
END_TEST

/* At the configured size the store says so: the change fails, and nothing of it is kept. */
START_TEST(test_map_full)
{
    struct linkstore *s = open_store(1 * MIB);
    char phone[IDENTITY_PHONE_MAX + 1];
    int rc = 0, n = 0, committed = 0;

    /* Batches of 1,000 until the map refuses one. */
    while (rc == 0 && n < 1000000) {
        for (int i = 0; i < 1000 && rc == 0; i++, n++) {
            snprintf(phone, sizeof(phone), "+1555%07d", n);
            rc = linkstore_put(s, phone, CUS1);
        }
        if (rc == 0) {
            ck_assert_int_eq(linkstore_set_position(s, 0, n), 0);
            rc = linkstore_commit(s);
            if (rc == 0)
                committed = n;
        }
    }
    ck_assert_int_eq(rc, -ENOSPC);
    /* A spoilt transaction refuses everything until it is aborted (commit aborts it too). */
    ck_assert_int_eq(linkstore_put(s, "+15559999999", CUS1), -ENOSPC);
    ck_assert_int_eq(linkstore_commit(s), -ENOSPC);
    ck_assert_uint_eq(linkstore_count(s), (size_t)committed);
    ck_assert_int_eq(linkstore_position(s, 0), committed);
    ck_assert_int_gt(committed, 1000);
    /* The committed state is intact, and still takes a small change. */
    snprintf(phone, sizeof(phone), "+1555%07d", committed - 1);
    ck_assert_str_eq(get(s, phone), CUS1);
    ck_assert_int_eq(linkstore_del(s, phone), 0);
    ck_assert_int_eq(linkstore_commit(s), 0);
    ck_assert_str_eq(get(s, phone), "");
    linkstore_close(s);

    /* Reopened with a larger limit, it grows. */
    s = open_store(8 * MIB);
    ck_assert_int_eq(linkstore_put(s, "+15559999999", CUS1), 0);
    ck_assert_int_eq(linkstore_commit(s), 0);
    linkstore_close(s);
}
END_TEST

/* One process owns a store: a second opener is refused while the first has it. */
START_TEST(test_second_opener_refused)
{
    struct linkstore *s = open_store(16 * MIB), *t;
    pid_t pid;
    int status;

    /* flock() is per open file: a second open in this process is refused as well. */
    t = linkstore_open(dir, 16 * MIB, note, sizeof(note), err, sizeof(err));
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err, "in use by another process") != NULL, "%s", err);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        t = linkstore_open(dir, 16 * MIB, note, sizeof(note), err, sizeof(err));
        _exit(t == NULL ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    linkstore_close(s);
    s = open_store(16 * MIB);
    linkstore_close(s);
}
END_TEST

/* The directory check -t runs: usable, creatable, or a clear reason. */
START_TEST(test_check_dir)
{
    char path[128];
    int fd;

    ck_assert_int_eq(linkstore_check_dir(dir, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/a/b/c", dir);
    ck_assert_int_eq(linkstore_check_dir(path, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/file", dir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(linkstore_check_dir(path, err, sizeof(err)), -ENOTDIR);
    ck_assert_msg(strstr(err, "is not a directory") != NULL, "%s", err);
    snprintf(path, sizeof(path), "%s/file/store", dir);
    ck_assert_int_eq(linkstore_check_dir(path, err, sizeof(err)), -ENOTDIR);
    /* Opening makes the missing directories. */
    snprintf(path, sizeof(path), "%s/x/y", dir);
    struct linkstore *s = linkstore_open(path, MIB, note, sizeof(note), err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    linkstore_close(s);
    snprintf(path, sizeof(path), "%s/file/store", dir);
    ck_assert_ptr_null(linkstore_open(path, MIB, note, sizeof(note), err, sizeof(err)));
    ck_assert_msg(strstr(err, "cannot create the directory") != NULL, "%s", err);
}
END_TEST

static Suite *linkstore_suite(void)
{
    Suite *s = suite_create("linkstore");
    TCase *tc = tcase_create("store");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_put_get_delete);
    tcase_add_test(tc, test_reopen_positions);
    tcase_add_test(tc, test_corrupt_file_replaced);
    tcase_add_test(tc, test_foreign_format_replaced);
    tcase_add_test(tc, test_map_full);
    tcase_add_test(tc, test_second_opener_refused);
    tcase_add_test(tc, test_check_dir);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(linkstore_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
