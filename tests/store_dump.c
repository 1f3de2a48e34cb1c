/* SPDX-License-Identifier: MIT */
/* store_dump.c -- print an identity store: its origin, every position and every link. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "linkstore.h"

static int print_link(const char *phone, const char *customer_id, void *opaque)
{
    (void)opaque;
    printf("link %s %s\n", phone, customer_id);
    return 0;
}

/* store_dump DIR: "origin CLUSTER TOPIC PARTITIONS", "position P OFFSET", "link PHONE ID". */
int main(int argc, char **argv)
{
    struct linkstore_origin o;
    struct linkstore *s;
    char note[256], err[512];
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: store_dump DIR\n");
        return 64;
    }
    s = linkstore_open(argv[1], (size_t)1 << 30, note, sizeof(note), err, sizeof(err));
    if (!s) {
        fprintf(stderr, "store_dump: %s\n", err);
        return 1;
    }
    if (note[0])
        fprintf(stderr, "store_dump: %s\n", note);
    if (linkstore_origin(s, &o) == 0) {
        printf("origin %s %s %d\n", o.cluster[0] ? o.cluster : "-", o.topic, o.partitions);
        for (int p = 0; p < o.partitions; p++)
            printf("position %d %lld\n", p, (long long)linkstore_position(s, p));
    }
    rc = linkstore_foreach(s, print_link, NULL);
    linkstore_close(s);
    return rc == 0 && !note[0] ? 0 : 1;
}
