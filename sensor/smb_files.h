/*
 * smb_files.h - the files of an SMB flow, put in file order for files.c.
 *
 * smb.c hands over file data with its offset in the file, as the messages carry it. A
 * client writes in order, but it reads with several READ requests outstanding and the
 * server answers them in any order (64 KiB reads, four to eight at once, are what Windows
 * does). Data past the next expected offset is held, copied, until the bytes before it
 * come; at most SMB_REORDER_MAX bytes per file, past which the missing bytes are a gap
 * (the file's hash is then not written) and what is held is given in order. Bytes before
 * the next expected offset were seen already (a rewrite, a read again) and are dropped.
 * When the file ends, what is still held goes after a gap.
 */
#ifndef FH_SMB_FILES_H
#define FH_SMB_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "files.h"
#include "smb.h"

#define SMB_REORDER_MAX (1u << 20)

struct pworker;
struct flow;

typedef struct smb_chunk smb_chunk;

typedef struct {
    fh_file f;
    uint64_t next;   /* file offset expected next */
    smb_chunk *held; /* data past it, by offset */
    uint32_t held_bytes;
    uint32_t tx_id; /* the flow's count of SMB files when this one opened */
} smb_pfile;

typedef struct {
    smb_pfile slot[SMB_MAX_FILES]; /* smb.c's file slots */
    uint32_t opened;
} smb_files;

/* Bytes [off, off + len) of the file in slot i, read (dir FLOW_TOCLIENT) or written. */
void smb_files_data(struct pworker *p, smb_files *s, int i, int dir, const char *name, uint64_t off,
                    const uint8_t *data, size_t len);
/* Bytes of the file in slot i will not be seen. */
void smb_files_gap(smb_files *s, int i);
/* Ends the file in slot i (its fileinfo event); share: where it is, or "" / NULL. */
void smb_files_close(struct pworker *p, struct flow *fl, smb_files *s, int i, const char *share,
                     bool complete, uint64_t ts_us);
/* Frees everything without events (teardown). */
void smb_files_discard(struct pworker *p, smb_files *s);
/* Bytes held for reordering, over the slots. */
size_t smb_files_mem(const smb_files *s);

#endif
