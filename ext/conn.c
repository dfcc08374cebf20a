/*
** conn.c -- the per-connection state of the atomic extension: creating and
** freeing it, running its cached statements, the misuse checks every SQL
** function shares, error reporting, argument parsing and memory.
**
** HOW IT WORKS
**
** The state is reference counted: every registered function name and
** every module holds one reference, and so does every virtual table
** instance while it is connected.  SQLite destroys all of them in
** sqlite3_close(), so the state is freed exactly once, after the last.
**
** Statements the extension runs often (BEGIN, COMMIT, SAVEPOINT, ...) are
** prepared once and kept.  A kept statement would make sqlite3_close()
** fail with SQLITE_BUSY, so the eponymous table atomic_close_guard is
** always connected before a statement is kept: sqlite3_close() disconnects
** virtual tables before it looks for unfinalized statements, and its
** xDisconnect finalizes them (pending.c).
*/
#include "atomicInt.h"
#include <stdarg.h>

/* Django's texts, used wherever Django has a message for the case */
const char atomic_broken_text[] =
  "An error occurred in the current transaction. You can't execute queries "
  "until the end of the 'atomic' block.";
const char atomic_forbidden_text[] =
  "This is forbidden when an 'atomic' block is active.";

/*
** Allocation.  Every allocation of the extension goes through these three
** functions.  A test build (-DATOMIC_TEST) can make the Nth one fail.
*/
#ifdef ATOMIC_TEST
static int atomicTestCountdown = 0;   /* Fail when this reaches 0 from 1 */
static int atomic_test_fail(void){
  return atomicTestCountdown>0 && --atomicTestCountdown==0;
}

/*
** SQL function atomic_test_oom(N): the Nth allocation of the extension
** from now on fails (0: none).  Returns how many allocations were still to
** go before the call (0 if the fault already happened or none was set), so
** a test can pause the countdown and resume it.  Test builds only; the
** countdown is process-wide on purpose, so that it also reaches the
** allocations made while the extension loads.
*/
void atomicTestOomFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  sqlite3_result_int(ctx, atomicTestCountdown);
  atomicTestCountdown = sqlite3_value_int(argv[0]);
}
# define ATOMIC_FAIL() atomic_test_fail()
#else
# define ATOMIC_FAIL() 0
#endif

void *atomic_malloc(i64 n){
  if( ATOMIC_FAIL() ) return 0;
  return sqlite3_malloc64((sqlite3_uint64)n);
}
void *atomic_realloc(void *p, i64 n){
  if( ATOMIC_FAIL() ) return 0;
  return sqlite3_realloc64(p, (sqlite3_uint64)n);
}
static char *atomic_vmprintf(const char *zFmt, va_list ap){
  if( ATOMIC_FAIL() ) return 0;
  return sqlite3_vmprintf(zFmt, ap);
}
char *atomic_mprintf(const char *zFmt, ...){
  va_list ap;
  char *z;
  va_start(ap, zFmt);
  z = atomic_vmprintf(zFmt, ap);
  va_end(ap);
  return z;
}

/*
** Make sure the array *pa of elements of szElem bytes, with *pnAlloc slots,
** has room for nNeed elements, doubling it as needed.  Returns SQLITE_OK or
** SQLITE_NOMEM (the array is then unchanged).
*/
int atomic_grow(void **pa, int *pnAlloc, int nNeed, int szElem){
  if( nNeed>*pnAlloc ){
    i64 nNew = *pnAlloc ? 2*(i64)*pnAlloc : 8;
    void *aNew;
    while( nNew<nNeed ) nNew *= 2;
    if( nNew>0x7fffffff ) return SQLITE_NOMEM;
    aNew = atomic_realloc(*pa, nNew*szElem);
    if( aNew==0 ) return SQLITE_NOMEM;
    *pa = aNew;
    *pnAlloc = (int)nNew;
  }
  return SQLITE_OK;
}

/*
** Allocate the state of a new connection, with no reference yet.  The
** savepoint names carry a random part so that they do not meet names an
** application chose.  Returns NULL on OOM.
*/
AtomicConn *atomic_conn_new(sqlite3 *db){
  AtomicConn *p = atomic_malloc(sizeof(*p));
  unsigned int r = 0;
  if( p==0 ) return 0;
  memset(p, 0, sizeof(*p));
  p->db = db;
  sqlite3_randomness(sizeof(r), &r);
  sqlite3_snprintf(sizeof(p->zPrefix), p->zPrefix, "s%08x", r);
  /* Short, because SQLite compares it on every RELEASE and ROLLBACK TO;
  ** a raw savepoint that happens to have the same name only costs extra
  ** statements (atomic_sp_close) */
  sqlite3_snprintf(sizeof(p->zSpName), p->zSpName, "_a%04x", r & 0xffff);
  return p;
}

void atomic_conn_ref(AtomicConn *p){
  p->nRef++;
}

/*
** Drop one reference to the state; the last one frees it.  Used as the
** xDestroy of every function and module.  By then atomic_pending has
** finalized the statements (sqlite3_close() cannot get this far while any
** statement exists), so this only frees memory.
*/
void atomic_conn_unref(void *pArg){
  AtomicConn *p = (AtomicConn*)pArg;
  if( p && --p->nRef<=0 ){
    atomic_finalize_all(p);
    atomic_queue_clear(&p->pending);
    atomic_queue_clear(&p->ready);
    atomic_sql_clear(p);
    sqlite3_free(p->aBlock);
    sqlite3_free(p->aLevel);
    sqlite3_free(p->aManual);
    sqlite3_free(p);
  }
}

/*
** Finalize every statement the state keeps.  Called by atomic_pending's
** xDisconnect during sqlite3_close(), and harmless at any other time: the
** statements are prepared again when next needed.
*/
void atomic_finalize_all(AtomicConn *p){
  int i;
  for(i=0; i<ATOMIC_N_STMT; i++){
    sqlite3_finalize(p->apStmt[i]);
    p->apStmt[i] = 0;
  }
  atomic_sql_finalize(p);
}

/*
** Make sure atomic_close_guard (pending.c) is connected, so that kept
** statements are finalized by sqlite3_close().  Returns SQLITE_OK, or an error if the
** table cannot be connected (then nothing may be kept).
*/
int atomic_guard(AtomicConn *p){
  if( p->bGuard==0 ){
    sqlite3_stmt *pStmt = 0;
    int rc = sqlite3_prepare_v2(p->db,
                                "SELECT 0 FROM main.atomic_close_guard",
                                -1, &pStmt, 0);
    sqlite3_finalize(pStmt);
    if( rc!=SQLITE_OK ) return rc;
    if( p->bGuard==0 ) return SQLITE_INTERNAL;
  }
  return SQLITE_OK;
}

/*
** Prepare cached statement iStmt.
*/
static int atomic_prepare(AtomicConn *p, int iStmt){
  static const char *const azMode[] = {
    "BEGIN DEFERRED", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"
  };
  char zBuf[64];
  const char *zSql = zBuf;
  int rc = atomic_guard(p);
  if( rc!=SQLITE_OK ) return rc;
  switch( iStmt ){
    case ATOMIC_STMT_BEGIN:    zSql = azMode[p->eMode];  break;
    case ATOMIC_STMT_COMMIT:   zSql = "COMMIT";          break;
    case ATOMIC_STMT_ROLLBACK: zSql = "ROLLBACK";        break;
    case ATOMIC_STMT_SAVEPOINT:
      sqlite3_snprintf(sizeof(zBuf), zBuf, "SAVEPOINT %s", p->zSpName);
      break;
    case ATOMIC_STMT_RELEASE:
      sqlite3_snprintf(sizeof(zBuf), zBuf, "RELEASE %s", p->zSpName);
      break;
    case ATOMIC_STMT_ROLLBACKTO:
      sqlite3_snprintf(sizeof(zBuf), zBuf, "ROLLBACK TO %s", p->zSpName);
      break;
    case ATOMIC_STMT_JOIN:
      zSql = "INSERT OR IGNORE INTO temp.atomic_txn VALUES(0)";
      break;
    default:
      zSql = "PRAGMA main.schema_version";
      break;
  }
  return sqlite3_prepare_v3(p->db, zSql, -1, SQLITE_PREPARE_PERSISTENT,
                            &p->apStmt[iStmt], 0);
}

/*
** The first run of cached statement iStmt: prepare it, then run it as
** atomic_exec() does.
*/
int atomic_exec_first(AtomicConn *p, int iStmt){
  int rc = atomic_prepare(p, iStmt);
  if( rc!=SQLITE_OK ) return rc;
  return atomic_exec(p, iStmt);
}

/*
** Read main's schema_version into *piVersion.  Returns SQLITE_OK or an
** error code.
*/
int atomic_schema_version(AtomicConn *p, int *piVersion){
  sqlite3_stmt *pStmt = p->apStmt[ATOMIC_STMT_SCHEMA];
  int rc;
  if( pStmt==0 ){
    rc = atomic_prepare(p, ATOMIC_STMT_SCHEMA);
    if( rc!=SQLITE_OK ) return rc;
    pStmt = p->apStmt[ATOMIC_STMT_SCHEMA];
  }
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    *piVersion = sqlite3_column_int(pStmt, 0);
  }
  rc = sqlite3_reset(pStmt);
  return rc==SQLITE_OK ? rc : sqlite3_extended_errcode(p->db);
}

/*
** Prepare, run and finalize one statement.  Returns SQLITE_OK or the
** extended error code, with the message in sqlite3_errmsg(p->db).  zSql may be NULL
** (the result of a failed atomic_mprintf()): SQLITE_NOMEM.
*/
int atomic_exec_sql(AtomicConn *p, const char *zSql){
  sqlite3_stmt *pStmt = 0;
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(p->db, zSql, -1, &pStmt, 0);
  if( rc==SQLITE_OK && pStmt ){
    while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){}
    if( rc==SQLITE_DONE ) rc = SQLITE_OK;
  }
  sqlite3_finalize(pStmt);
  return rc==SQLITE_OK ? rc : sqlite3_extended_errcode(p->db);
}

/*
** True if a statement that writes is running on the connection, so that
** the calling function is part of it (a trigger, INSERT ... SELECT f()).
** In autocommit mode such a statement is the only way to have a write
** transaction; inside a transaction every statement must be looked at.
*/
int atomic_writer_active(AtomicConn *p){
  sqlite3_stmt *pStmt = 0;
  if( sqlite3_get_autocommit(p->db) ){
    return sqlite3_txn_state(p->db, 0)==SQLITE_TXN_WRITE;
  }
  while( (pStmt = sqlite3_next_stmt(p->db, pStmt))!=0 ){
    if( sqlite3_stmt_busy(pStmt) && !sqlite3_stmt_readonly(pStmt) ) return 1;
  }
  return 0;
}

/*
** Copy at most ATOMIC_CLIP bytes of z into zBuf (which has room for
** ATOMIC_CLIP+4 bytes), ending on a UTF-8 character boundary and with
** "..." if z was longer, and return zBuf.  Error messages quote user input
** through this, so that a huge argument cannot make the message itself
** too big for SQLite.  NULL is copied as "NULL".
*/
const char *atomic_clip(const char *z, char *zBuf){
  int n = 0;
  if( z==0 ) z = "NULL";
  while( z[n] && n<ATOMIC_CLIP ) n++;
  if( z[n]==0 ) return z;
  while( n>0 && (((unsigned char)z[n])&0xc0)==0x80 ) n--;
  memcpy(zBuf, z, n);
  memcpy(&zBuf[n], "...", 4);
  return zBuf;
}

/*
** Report that a statement that writes called zFunc (E4).
*/
void atomic_error_writer(sqlite3_context *ctx, const char *zFunc){
  atomic_error(ctx, SQLITE_ERROR,
      "%s(): cannot be called from a statement that writes (a trigger, "
      "or INSERT/UPDATE/DELETE ... %s()); call it from a statement of its "
      "own, such as SELECT %s()", zFunc, zFunc, zFunc);
}

/*
** The text of the current orphan state (X5), without the function name.
*/
const char *atomic_orphan_text(AtomicConn *p){
  switch( p->eOrphan ){
    case ATOMIC_ORPHAN_COMMIT:
      return "the transaction was committed outside of the 'atomic' block";
    case ATOMIC_ORPHAN_ROLLBACK:
      return "the transaction was rolled back outside of the 'atomic' block";
    default:
      return "the transaction ended outside of the 'atomic' block";
  }
}

/*
** Open blocks with no transaction under them mean the transaction ended
** and temp.atomic_txn was not told (it cannot be dropped while it is in a
** transaction, so this is a last line of defence): make the blocks
** orphans.
*/
void atomic_sync(AtomicConn *p){
  if( p->nBlock>0 && p->eOrphan==ATOMIC_ORPHAN_NONE
   && sqlite3_get_autocommit(p->db)
  ){
    p->eOrphan = ATOMIC_ORPHAN_LOST;
    p->nLevel = 0;
    p->nManual = 0;
    p->bJoined = 0;
    p->bRollback = p->bBroken = 0;
    atomic_queue_truncate(&p->pending, 0);
  }
}

/*
** The checks that guard the SQL functions, in this order:
**
**   ATOMIC_CHECK_WRITER   called from a statement that writes (E4)
**   ATOMIC_CHECK_FORBID   a block is open, orphans included (L1, P3)
**   ATOMIC_CHECK_ORPHAN   orphaned blocks remain (X5)
**   ATOMIC_CHECK_BROKEN   a failure broke the transaction (F3)
**
** If one fails, set the error on ctx and return non-zero.
*/
int atomic_check(AtomicConn *p, sqlite3_context *ctx, const char *zFunc,
                 int mCheck){
  atomic_sync(p);
  if( (mCheck & ATOMIC_CHECK_WRITER) && atomic_writer_active(p) ){
    atomic_error_writer(ctx, zFunc);
    return 1;
  }
  if( (mCheck & ATOMIC_CHECK_FORBID) && p->nBlock>0 ){
    atomic_error(ctx, SQLITE_ERROR, "%s(): %s", zFunc, atomic_forbidden_text);
    return 1;
  }
  if( (mCheck & ATOMIC_CHECK_ORPHAN) && p->eOrphan ){
    atomic_error(ctx, SQLITE_ERROR,
        "%s(): %s; call atomic_exit() for each of the %d open blocks first",
        zFunc, atomic_orphan_text(p), p->nBlock);
    return 1;
  }
  if( (mCheck & ATOMIC_CHECK_BROKEN) && p->bBroken ){
    atomic_error(ctx, SQLITE_ERROR, "%s(): %s", zFunc, atomic_broken_text);
    return 1;
  }
  return 0;
}

/*
** Set the error of ctx to a printf-style message and result code rc.
*/
void atomic_error(sqlite3_context *ctx, int rc, const char *zFmt, ...){
  va_list ap;
  char *z;
  va_start(ap, zFmt);
  z = atomic_vmprintf(zFmt, ap);
  va_end(ap);
  if( z==0 || rc==SQLITE_NOMEM || (rc&0xff)==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_error(ctx, z, -1);
    sqlite3_result_error_code(ctx, rc);
  }
  sqlite3_free(z);
}

/*
** Report the connection's last error, from a statement the extension ran,
** as the error of ctx, keeping its result code.
*/
void atomic_error_db(sqlite3_context *ctx, AtomicConn *p, int rc,
                     const char *zFunc){
  atomic_error(ctx, rc, "%s(): %s", zFunc, sqlite3_errmsg(p->db));
}

/*
** Parse the integer forms SPEC section 2 accepts: an INTEGER; a REAL with
** no fractional part within the 64-bit range; a TEXT of an optional sign
** and decimal digits within that range.  Returns SQLITE_OK, SQLITE_NOMEM,
** or SQLITE_MISMATCH for anything else (NULL included).
*/
static int atomic_parse_int(sqlite3_value *pVal, i64 *piOut){
  switch( sqlite3_value_type(pVal) ){
    case SQLITE_INTEGER:
      *piOut = sqlite3_value_int64(pVal);
      return SQLITE_OK;
    case SQLITE_FLOAT: {
      double r = sqlite3_value_double(pVal);
      if( r>=-9223372036854775808.0 && r<9223372036854775808.0
       && (double)(i64)r==r
      ){
        *piOut = (i64)r;
        return SQLITE_OK;
      }
      break;
    }
    case SQLITE_TEXT: {
      const unsigned char *z = sqlite3_value_text(pVal);
      int n = sqlite3_value_bytes(pVal);
      int i = 0, bNeg = 0;
      sqlite3_uint64 u = 0;
      sqlite3_uint64 mx = (sqlite3_uint64)1 << 63;   /* |smallest i64| */
      if( z==0 ) return SQLITE_NOMEM;
      if( n>0 && (z[0]=='-' || z[0]=='+') ){ bNeg = z[0]=='-'; i++; }
      if( i<n ){
        for(; i<n && z[i]>='0' && z[i]<='9'; i++){
          u = u*10 + (z[i]-'0');
          if( u>mx ) break;
        }
        if( i==n && (bNeg ? u<=mx : u<mx) ){
          *piOut = bNeg ? (i64)(0-u) : (i64)u;
          return SQLITE_OK;
        }
      }
      break;
    }
  }
  return SQLITE_MISMATCH;
}

/*
** Read boolean argument zArg of function zFunc: an integer form, 0 for
** false and any other value for true.  On failure set the error of ctx
** and return non-zero.
*/
int atomic_arg_bool(sqlite3_context *ctx, const char *zFunc,
                    const char *zArg, sqlite3_value *pVal, int *pbOut){
  i64 i = 0;
  int rc = atomic_parse_int(pVal, &i);
  if( rc==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else if( rc!=SQLITE_OK ){
    atomic_error(ctx, SQLITE_ERROR, "%s(): %s must be 0 or 1",
                 zFunc, zArg);
  }else{
    *pbOut = i!=0;
  }
  return rc!=SQLITE_OK;
}
