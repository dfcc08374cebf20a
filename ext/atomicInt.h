/*
** atomicInt.h -- the private interface shared by the files of the atomic
** extension, and the design of its per-connection state machine.
**
** THE STATE
**
** Everything lives in one AtomicConn per database connection.  It is
** created by the first load of the extension on that connection, shared by
** every registered function and module (each holds a reference), and freed
** when the last of them is destroyed by sqlite3_close().  No other mutable
** state exists: connections are independent (N1).
**
**   aBlock[0..nBlock-1]  the open atomic blocks, outermost first.  A block
**                        only records where its savepoint sits in the
**                        level stack below (or that it has none).
**   bOwner               aBlock[0] began the transaction with BEGIN (E2);
**                        otherwise the application's transaction was
**                        already open ("manual mode", E3).
**   bRollback, bBroken   the rollback flag (F1, F2) and whether it was set
**                        by a failure, which makes the transaction
**                        "broken" (F3).
**   eOrphan              the transaction ended behind the blocks' back
**                        (X5): every open block is an orphan.
**   aLevel[0..nLevel-1]  one entry per SQLite savepoint open right now --
**                        the blocks' own, manual ones, raw SQL ones and
**                        the statement savepoint of each writing
**                        statement -- with its owner and the last pending
**                        callback when it opened (its "mark").
**   pending, ready       callbacks queued by the current transaction, and
**                        callbacks of committed work not yet run (C9).
**   aManual[]            open manual savepoints (savepoint()).
**
** HOW THE STATE STAYS TRUE
**
** SQLite tells a virtual table that has joined the transaction about every
** savepoint, release, rollback-to, commit and rollback, whoever caused it.
** At the start of every transaction the extension cares about, it joins a
** virtual table of its own, temp.atomic_txn (txn.c), with one cached
** statement whose write the table ignores.  Its xSavepoint, xRelease and xRollbackTo
** methods keep aLevel[] equal to SQLite's savepoint stack; xCommit runs
** after a successful commit and xRollback after any rollback.  That one
** mechanism gives:
**
**   - discarding exactly what was undone (C6): a rollback to level i cuts
**     the pending queue back to the mark of level i;
**     this covers block rollbacks, savepoint_rollback(), raw ROLLBACK TO
**     and the statement rollback of a failing multi-row INSERT whose
**     triggers queued callbacks, all in O(callbacks discarded);
**   - handing callbacks to the parent on release: nothing to do, the
**     queue is untouched;
**   - noticing a transaction that ended outside the blocks (X5) and
**     whether it committed or rolled back, with no commit or rollback hook,
**     so an application's own hooks are never displaced;
**   - noticing a block's savepoint that vanished under a raw RELEASE or
**     ROLLBACK TO: the level entry owned by the block is gone.
**
** The level stack is indexed as SQLite indexes savepoints: a savepoint
** that began the transaction (raw SAVEPOINT in autocommit mode) is index
** -1 and is never an entry.
**
** TRANSITIONS (the rules are SPEC.md section 3)
**
**   state            event                      effect
**   ---------------  -------------------------  -----------------------------
**   no block         atomic_enter(), autocommit BEGIN, join, push; bOwner=1
**   no block         atomic_enter(), txn open   join, SAVEPOINT?, push;
**                                               bOwner=0
**   blocks           atomic_enter()             SAVEPOINT if savepoint=1 and
**                                               the flag is clear; push
**   top=owner        atomic_exit(keep)          COMMIT, pop, run ready queue
**   top=owner        atomic_exit(rollback)      ROLLBACK, pop
**   top has sp       atomic_exit(keep)          RELEASE, pop
**   top has sp       atomic_exit(rollback)      ROLLBACK TO; RELEASE, pop,
**                                               flag cleared
**   top has no sp    atomic_exit(rollback)      flag set (broken), pop
**   sp vanished      atomic_exit(...)           flag set, pop; error if keep
**   any, joined      xSavepoint(i)              aLevel[i] = {owner, mark}
**   any, joined      xRelease(i)                drop aLevel[i..]
**   any, joined      xRollbackTo(i)             drop aLevel[i+1..]; cut the
**                                               pending queue to aLevel[i]
**   any, joined      xCommit (ours or manual)   pending -> ready
**   any, joined      xRollback (ours or manual) pending discarded
**   blocks, joined   xCommit/xRollback, foreign every block an orphan;
**                                               pending discarded
**   orphans          atomic_exit()              pop, no SQL, error
**
** Only a top-level statement that does not write may change the
** transaction (E4).  SQLite itself refuses SAVEPOINT and RELEASE while a
** statement writes, so the two hot paths (an inner block with a savepoint)
** rely on that; every other path asks atomic_writer_active() first.
*/
#ifndef ATOMICINT_H
#define ATOMICINT_H

#include "sqlite3ext.h"       /* With SQLITE_CORE, a static build */
SQLITE_EXTENSION_INIT3
#include <string.h>

#define ATOMIC_VERSION "0.1.0"

typedef sqlite3_int64 i64;
typedef unsigned char u8;

typedef struct AtomicBlock AtomicBlock;
typedef struct AtomicCallback AtomicCallback;
typedef struct AtomicConn AtomicConn;
typedef struct AtomicLevel AtomicLevel;
typedef struct AtomicManual AtomicManual;
typedef struct AtomicQueue AtomicQueue;
typedef struct AtomicSql AtomicSql;
typedef struct AtomicValue AtomicValue;

/*
** Cached statements owned by the connection state.  They stay prepared for
** the life of the connection; the eponymous table atomic_close_guard
** finalizes them when sqlite3_close() disconnects it, which SQLite does
** before it checks for unfinalized statements (see pending.c).
*/
#define ATOMIC_STMT_BEGIN       0   /* BEGIN <transaction_mode> */
#define ATOMIC_STMT_COMMIT      1   /* COMMIT */
#define ATOMIC_STMT_ROLLBACK    2   /* ROLLBACK */
#define ATOMIC_STMT_SAVEPOINT   3   /* SAVEPOINT <block savepoint name> */
#define ATOMIC_STMT_RELEASE     4   /* RELEASE <block savepoint name> */
#define ATOMIC_STMT_ROLLBACKTO  5   /* ROLLBACK TO <block savepoint name> */
#define ATOMIC_STMT_JOIN        6   /* INSERT OR IGNORE INTO temp.atomic_txn */
#define ATOMIC_STMT_SCHEMA      7   /* PRAGMA main.schema_version */
#define ATOMIC_N_STMT           8

/* Values of AtomicConn.eOrphan */
#define ATOMIC_ORPHAN_NONE      0
#define ATOMIC_ORPHAN_COMMIT    1   /* committed outside the blocks */
#define ATOMIC_ORPHAN_ROLLBACK  2   /* rolled back outside the blocks */
#define ATOMIC_ORPHAN_LOST      3   /* ended, and nobody said how */

/* Values of AtomicBlock.iLevel other than a level index */
#define ATOMIC_NO_SAVEPOINT    (-1) /* the block made no savepoint */

/* Checks for atomic_check() */
#define ATOMIC_CHECK_WRITER  0x01   /* Called from a writing statement (E4) */
#define ATOMIC_CHECK_FORBID  0x02   /* A block is open, orphans too (L1) */
#define ATOMIC_CHECK_ORPHAN  0x04   /* Orphaned blocks remain (X5) */
#define ATOMIC_CHECK_BROKEN  0x08   /* The transaction is broken (F3) */

/* Bytes of user input an error message quotes (atomic_clip) */
#define ATOMIC_CLIP 100

/* Callbacks run nested at most this deep (C8) */
#define ATOMIC_MAX_RUN_DEPTH   64

/* Values of AtomicConn.eMode (transaction_mode) */
#define ATOMIC_MODE_DEFERRED    0
#define ATOMIC_MODE_IMMEDIATE   1
#define ATOMIC_MODE_EXCLUSIVE   2

/*
** One open atomic block.
*/
struct AtomicBlock {
  int iLevel;               /* Level of its savepoint, or ATOMIC_NO_SAVEPOINT */
};

/*
** One open SQLite savepoint, as reported to temp.atomic_txn.  The owner is
** 0 for a savepoint the extension did not make (raw SQL, a statement
** savepoint), the 1-based depth of the block that made it, or minus the
** serial number of a manual savepoint.
*/
struct AtomicLevel {
  i64 iOwner;               /* Who made it (see above) */
  AtomicCallback *pMark;    /* Last pending callback when it opened */
};

/*
** One open manual savepoint made by savepoint().  Its id is
** "<zPrefix>_x<iSerial>".  iDepth is the block it belongs to.
*/
struct AtomicManual {
  i64 iSerial;              /* Counter value in its id */
  int iLevel;               /* Its entry in AtomicConn.aLevel */
  int iDepth;               /* Block depth it belongs to */
};

/*
** A value kept for a callback's parameter.  Text and blob bytes live in
** the same allocation as the callback that owns them.
*/
struct AtomicValue {
  union {
    i64 i;                  /* SQLITE_INTEGER */
    double r;               /* SQLITE_FLOAT */
    const char *z;          /* SQLITE_TEXT, SQLITE_BLOB */
  } u;
  int n;                    /* Bytes of text or blob */
  int eType;                /* SQLITE_INTEGER, ... SQLITE_NULL */
};

/*
** The text of a callback's statement, shared by every callback queued with
** the same text, and possibly a prepared statement for it.  Entries live in
** the hash table AtomicConn.aSqlHash while a callback refers to them or
** while they hold a cached statement (queue.c).
*/
struct AtomicSql {
  AtomicConn *p;            /* Connection whose hash table holds it */
  char *zSql;               /* The text, nul-terminated */
  int nSql;                 /* Bytes in zSql */
  unsigned int iHash;       /* Hash of zSql */
  int nRef;                 /* Callbacks that refer to this text */
  int nParam;               /* sqlite3_bind_parameter_count() */
  int iSchema;              /* main's schema_version when last checked */
  sqlite3_stmt *pStmt;      /* Cached prepared statement, or NULL */
  AtomicSql *pNext;         /* Next in the same hash bucket */
  AtomicSql *pLruPrev;      /* Neighbours in the list of cached statements */
  AtomicSql *pLruNext;
};

/*
** One queued callback: a statement and the values for its parameters.
*/
struct AtomicCallback {
  AtomicCallback *pNext;    /* Next in its queue */
  AtomicSql *pSql;          /* The statement (holds one reference) */
  int iDepth;               /* Block depth when it was queued */
  int nArg;                 /* Entries in aArg[] */
  int nRef;                 /* The queue, and open atomic_pending cursors */
  u8 bRobust;               /* Queued by on_commit_robust() */
  AtomicValue aArg[1];      /* Parameter values (really nArg of them) */
};

/*
** A FIFO of callbacks, as a list: appending one, moving a whole queue to
** the end of another and detaching a queue to run it are O(1) and cannot
** fail, and cutting it back to a mark frees just what is cut.
*/
struct AtomicQueue {
  AtomicCallback *pFirst;   /* First to run */
  AtomicCallback *pLast;    /* Last queued */
};

/*
** The state of one connection.
*/
struct AtomicConn {
  sqlite3 *db;              /* The connection */
  int nRef;                 /* Functions and modules that hold this object */

  /* Blocks */
  AtomicBlock *aBlock;      /* Open blocks, outermost first */
  int nBlock;               /* Open blocks, orphans included */
  int nBlockAlloc;          /* Slots allocated in aBlock[] */
  u8 bOwner;                /* aBlock[0] began the transaction */
  u8 bRollback;             /* The rollback flag */
  u8 bBroken;               /* The flag was set by a failure (F3) */
  u8 eOrphan;               /* ATOMIC_ORPHAN_* */

  /* The transaction as temp.atomic_txn sees it */
  u8 bJoined;               /* temp.atomic_txn is in this transaction */
  u8 bExpectEnd;            /* Our own COMMIT or ROLLBACK is running */
  u8 bGuard;                /* Instances of atomic_pending/_close_guard */
  AtomicLevel *aLevel;      /* Open savepoints, outermost first */
  int nLevel;               /* Entries in aLevel[] */
  int nLevelAlloc;          /* Slots allocated in aLevel[] */
  i64 iNewOwner;            /* Owner of the next savepoint reported */
  int iSchema;              /* main's schema_version, read in this */
  u8 bSchema;               /*   transaction if bSchema */

  /* Manual savepoints */
  AtomicManual *aManual;    /* Open manual savepoints, oldest first */
  int nManual;              /* Entries in aManual[] */
  int nManualAlloc;         /* Slots allocated in aManual[] */
  i64 iSerial;              /* Last serial handed out by savepoint() */
  char zPrefix[16];         /* Per-connection prefix of manual ids */

  /* Callbacks */
  AtomicQueue pending;      /* Queued by the current transaction */
  AtomicQueue ready;        /* Committed, waiting to run (C9) */
  int nRunDepth;            /* Callbacks running now, nested */
  AtomicSql **aSqlHash;     /* Hash table of shared statement texts */
  int nSqlHash;             /* Buckets in aSqlHash (a power of two) */
  int nSql;                 /* Entries in the hash table */
  AtomicSql *pLruFirst;     /* Entries holding a cached statement, */
  AtomicSql *pLruLast;      /*   most recently used first */
  int nLru;                 /* Entries in that list */

  /* Statements */
  sqlite3_stmt *apStmt[ATOMIC_N_STMT];  /* Cached, see ATOMIC_STMT_* */
  char zSpName[24];         /* Name of every block savepoint */

  /* Configuration */
  int eMode;                /* ATOMIC_MODE_* for BEGIN */
};

/*
** conn.c -- the connection state, its statements and its errors
*/
AtomicConn *atomic_conn_new(sqlite3 *db);
void atomic_conn_ref(AtomicConn *p);
void atomic_conn_unref(void *p);
int atomic_exec_first(AtomicConn *p, int iStmt);
int atomic_schema_version(AtomicConn *p, int *piVersion);
int atomic_exec_sql(AtomicConn *p, const char *zSql);
void atomic_finalize_all(AtomicConn *p);
int atomic_guard(AtomicConn *p);
int atomic_writer_active(AtomicConn *p);
void atomic_error_writer(sqlite3_context *ctx, const char *zFunc);
const char *atomic_clip(const char *z, char *zBuf);
void atomic_sync(AtomicConn *p);
int atomic_check(AtomicConn *p, sqlite3_context *ctx, const char *zFunc,
                 int mCheck);
const char *atomic_orphan_text(AtomicConn *p);
void atomic_error(sqlite3_context *ctx, int rc, const char *zFmt, ...);
void atomic_error_db(sqlite3_context *ctx, AtomicConn *p, int rc,
                     const char *zFunc);
int atomic_arg_bool(sqlite3_context *ctx, const char *zFunc,
                    const char *zArg, sqlite3_value *pVal, int *pbOut);
void *atomic_malloc(i64 n);
void *atomic_realloc(void *p, i64 n);
char *atomic_mprintf(const char *zFmt, ...);
int atomic_grow(void **pa, int *pnAlloc, int nNeed, int szElem);

extern const char atomic_broken_text[];
extern const char atomic_forbidden_text[];

/*
** Run cached statement iStmt to completion.  Returns SQLITE_OK or the
** extended error code; the message is then sqlite3_errmsg(p->db).  Inline
** because entering and leaving an inner block is a hot path; the first
** run, which prepares the statement, is atomic_exec_first() (conn.c).
*/
static inline int atomic_exec(AtomicConn *p, int iStmt){
  sqlite3_stmt *pStmt = p->apStmt[iStmt];
  int rc;
  if( pStmt==0 ) return atomic_exec_first(p, iStmt);
  rc = sqlite3_step(pStmt);
  sqlite3_reset(pStmt);
  return rc==SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(p->db);
}

/*
** True if savepoint level iLevel exists and was made by iOwner.
*/
static inline int atomic_level_alive(AtomicConn *p, int iLevel, i64 iOwner){
  return iLevel>=0 && iLevel<p->nLevel && p->aLevel[iLevel].iOwner==iOwner;
}

/*
** txn.c -- temp.atomic_txn, which follows the transaction
*/
int atomic_txn_register(sqlite3 *db, AtomicConn *p);
int atomic_join(AtomicConn *p);
int atomic_sp_open(AtomicConn *p, i64 iOwner, const char *zSql, int *piLevel);
int atomic_sp_close(AtomicConn *p, int iLevel, i64 iOwner, int bRollback,
                    int bRelease, const char *zName);
int atomic_end_txn(AtomicConn *p, int bCommit, char **pzErr);

/*
** block.c -- atomic blocks and the rollback flag
*/
void atomicEnterFunc(sqlite3_context*, int, sqlite3_value**);
void atomicExitFunc(sqlite3_context*, int, sqlite3_value**);
void atomicSetRollbackFunc(sqlite3_context*, int, sqlite3_value**);
void atomicGetRollbackFunc(sqlite3_context*, int, sqlite3_value**);
void atomicDepthFunc(sqlite3_context*, int, sqlite3_value**);
void atomic_block_pop(AtomicConn *p);

/*
** queue.c -- on_commit() and the callback queue
*/
void atomicOnCommitFunc(sqlite3_context*, int, sqlite3_value**);
void atomicOnCommitRobustFunc(sqlite3_context*, int, sqlite3_value**);
void atomic_queue_truncate(AtomicQueue *pQ, AtomicCallback *pMark);
void atomic_queue_move(AtomicQueue *pDest, AtomicQueue *pSrc);
void atomic_callback_unref(AtomicCallback *pCb);
void atomic_queue_clear(AtomicQueue *pQ);
int atomic_queue_run_ready(AtomicConn *p, char **pzErr);
void atomic_sql_clear(AtomicConn *p);
void atomic_sql_finalize(AtomicConn *p);
char *atomic_callback_args_json(AtomicCallback *pCb);

/*
** pending.c -- the atomic_pending table
*/
int atomic_pending_register(sqlite3 *db, AtomicConn *p);

/*
** savepoint.c -- manual savepoints
*/
void atomicSavepointFunc(sqlite3_context*, int, sqlite3_value**);
void atomicSavepointCommitFunc(sqlite3_context*, int, sqlite3_value**);
void atomicSavepointRollbackFunc(sqlite3_context*, int, sqlite3_value**);
void atomicCleanSavepointsFunc(sqlite3_context*, int, sqlite3_value**);
void atomic_manual_prune(AtomicConn *p);
void atomic_manual_clamp(AtomicConn *p);

/*
** lowlevel.c -- autocommit, commit and rollback by hand
*/
void atomicGetAutocommitFunc(sqlite3_context*, int, sqlite3_value**);
void atomicSetAutocommitFunc(sqlite3_context*, int, sqlite3_value**);
void atomicCommitFunc(sqlite3_context*, int, sqlite3_value**);
void atomicRollbackFunc(sqlite3_context*, int, sqlite3_value**);

/*
** Test builds only (-DATOMIC_TEST): fail the Nth allocation.
*/
#ifdef ATOMIC_TEST
void atomicTestOomFunc(sqlite3_context*, int, sqlite3_value**);
#endif

#endif /* ATOMICINT_H */
