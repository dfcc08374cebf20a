/*
** conn.c -- the per-connection state of the atomic extension: creating and
** freeing it, the checks every SQL function makes first, error messages,
** argument parsing and memory.
**
** HOW IT WORKS
**
** The state is reference counted: every registered function name and
** every module holds one reference, and so does every virtual table
** instance while it is connected.  SQLite destroys all of them in
** sqlite3_close(), so the state is freed exactly once, after the last.
**
** TEST BUILDS (-DATOMIC_TEST)
**
**   atomic_test_oom(N)   the Nth allocation of the extension from now on
**                        fails (0: none).  Returns how many allocations
**                        were still to go before the call (0 if the fault
**                        already happened or none was set), so that a test
**                        can pause the countdown and resume it.  The
**                        countdown is process-wide on purpose, so that it
**                        also reaches the allocations made while loading.
*/
#include "atomicInt.h"
#include <stdarg.h>

/* Django's texts, used wherever Django has a message for the case */
ATM_PRIVATE const char atomicBrokenText[] =
  "An error occurred in the current transaction. You can't execute queries "
  "until the end of the 'atomic' block.";
ATM_PRIVATE const char atomicForbiddenText[] =
  "This is forbidden when an 'atomic' block is active.";

/* The state DOOMED, for messages */
ATM_PRIVATE const char atomicDoomedText[] =
  "a transaction that the atomic extension could not roll back is still "
  "open";

#ifdef ATOMIC_TEST
static int connOomCountdown = 0;   /* Fail when this reaches 0 from 1 */
static int connOomNow(void){
  return connOomCountdown>0 && --connOomCountdown==0;
}

/*
** SQL function atomic_test_oom(N).  Test builds only.
*/
ATM_PRIVATE void atomicTestOomFunc(sqlite3_context *ctx, int argc,
                                   sqlite3_value **argv){
  (void)argc;
  sqlite3_result_int(ctx, connOomCountdown);
  connOomCountdown = sqlite3_value_int(argv[0]);
}
# define ATM_OOM() connOomNow()
#else
# define ATM_OOM() 0
#endif

/*
** Allocation.  Every allocation of the extension goes through these three
** functions, so that a test build can make any of them fail.  They return
** NULL on failure.
*/
ATM_PRIVATE void *atomicMalloc(i64 n){
  if( ATM_OOM() ) return 0;
  return sqlite3_malloc64((u64)n);
}
ATM_PRIVATE void *atomicRealloc(void *p, i64 n){
  if( ATM_OOM() ) return 0;
  return sqlite3_realloc64(p, (u64)n);
}
static char *connVmprintf(const char *zFmt, va_list ap){
  if( ATM_OOM() ) return 0;
  return sqlite3_vmprintf(zFmt, ap);
}
ATM_PRIVATE char *atomicMprintf(const char *zFmt, ...){
  va_list ap;
  char *z;
  va_start(ap, zFmt);
  z = connVmprintf(zFmt, ap);
  va_end(ap);
  return z;
}

/*
** atomicGrow() when the array is full: make room for nNeed elements,
** doubling it as needed.  Returns SQLITE_OK or SQLITE_NOMEM (the array is
** then unchanged).
*/
ATM_PRIVATE int atomicGrowTo(void **pa, int *pnAlloc, int nNeed, int szElem){
  i64 nNew = *pnAlloc ? 2*(i64)*pnAlloc : 8;
  void *aNew;
  while( nNew<nNeed ) nNew *= 2;
  aNew = atomicRealloc(*pa, nNew*szElem);
  if( aNew==0 ) return SQLITE_NOMEM;
  *pa = aNew;
  *pnAlloc = (int)nNew;
  return SQLITE_OK;
}

/*
** Allocate the state of a new connection, with no reference yet.  The
** savepoint names carry a random part so that they do not meet names an
** application chose.  Returns NULL on OOM.
*/
ATM_PRIVATE AtomicConn *atomicConnNew(sqlite3 *db){
  AtomicConn *p = atomicMalloc(sizeof(*p));
  unsigned int r = 0;
  if( p==0 ) return 0;
  memset(p, 0, sizeof(*p));
  p->db = db;
  sqlite3_randomness(sizeof(r), &r);
  sqlite3_snprintf(sizeof(p->zPrefix), p->zPrefix, "s%08x", r);
  /* Short, because SQLite compares it on every RELEASE and ROLLBACK TO;
  ** a raw savepoint that happens to have the same name only costs extra
  ** statements (atomicSpClose) */
  sqlite3_snprintf(sizeof(p->zSpName), p->zSpName, "_a%04x", r & 0xffff);
  return p;
}

/*
** Take one reference to the state.
*/
ATM_PRIVATE void atomicConnRef(AtomicConn *p){
  p->nRef++;
}

/*
** Drop one reference to the state; the last one frees it.  Used as the
** xDestroy of every function and module.  By then atomic_close_guard has
** finalized the statements (sqlite3_close() cannot get this far while any
** statement exists), so this only frees memory.
*/
ATM_PRIVATE void atomicConnUnref(void *pArg){
  AtomicConn *p = (AtomicConn*)pArg;
  if( --p->nRef<=0 ){
    atomicFinalizeAll(p);
    atomicQueueCut(&p->pending, 0);
    atomicQueueCut(&p->ready, 0);
    atomicSqlClear(p);
    sqlite3_free(p->aBlock);
    sqlite3_free(p->aLevel);
    sqlite3_free(p->aManual);
#ifdef ATOMIC_TEST
    sqlite3_free(p->zFault);
#endif
    sqlite3_free(p);
  }
}

/*
** A message copied with atomicMprintf(), or "out of memory" if there was
** no memory for the copy.
*/
ATM_PRIVATE const char *atomicOom(const char *z){
  return z ? z : "out of memory";
}

/*
** Copy at most ATM_CLIP bytes of z into zBuf (which has room for
** ATM_CLIP+4 bytes), ending on a UTF-8 character boundary and with "..."
** if z was longer, and return zBuf.  Error messages quote user input
** through this, so that a huge argument cannot make the message itself
** too big for SQLite.  NULL is copied as "NULL".
*/
ATM_PRIVATE const char *atomicClip(const char *z, char *zBuf){
  int n = 0;
  if( z==0 ) z = "NULL";
  while( z[n] && n<ATM_CLIP ) n++;
  if( z[n]==0 ) return z;
  while( n>0 && (((unsigned char)z[n])&0xc0)==0x80 ) n--;
  memcpy(zBuf, z, n);
  memcpy(&zBuf[n], "...", 4);
  return zBuf;
}

/*
** The name of result code rc, e.g. "SQLITE_BUSY_SNAPSHOT"; an extended
** code this table lacks is named by its primary code, and a code that is
** none of SQLite's is called SQLITE_ERROR.
*/
ATM_PRIVATE const char *atomicCodeName(int rc){
  static const struct { int rc; const char *zName; } aCode[] = {
    { SQLITE_ERROR,       "SQLITE_ERROR" },
    { SQLITE_INTERNAL,    "SQLITE_INTERNAL" },
    { SQLITE_PERM,        "SQLITE_PERM" },
    { SQLITE_ABORT,       "SQLITE_ABORT" },
    { SQLITE_BUSY,        "SQLITE_BUSY" },
    { SQLITE_LOCKED,      "SQLITE_LOCKED" },
    { SQLITE_NOMEM,       "SQLITE_NOMEM" },
    { SQLITE_READONLY,    "SQLITE_READONLY" },
    { SQLITE_INTERRUPT,   "SQLITE_INTERRUPT" },
    { SQLITE_IOERR,       "SQLITE_IOERR" },
    { SQLITE_CORRUPT,     "SQLITE_CORRUPT" },
    { SQLITE_NOTFOUND,    "SQLITE_NOTFOUND" },
    { SQLITE_FULL,        "SQLITE_FULL" },
    { SQLITE_CANTOPEN,    "SQLITE_CANTOPEN" },
    { SQLITE_PROTOCOL,    "SQLITE_PROTOCOL" },
    { SQLITE_EMPTY,       "SQLITE_EMPTY" },
    { SQLITE_SCHEMA,      "SQLITE_SCHEMA" },
    { SQLITE_TOOBIG,      "SQLITE_TOOBIG" },
    { SQLITE_CONSTRAINT,  "SQLITE_CONSTRAINT" },
    { SQLITE_MISMATCH,    "SQLITE_MISMATCH" },
    { SQLITE_MISUSE,      "SQLITE_MISUSE" },
    { SQLITE_NOLFS,       "SQLITE_NOLFS" },
    { SQLITE_AUTH,        "SQLITE_AUTH" },
    { SQLITE_FORMAT,      "SQLITE_FORMAT" },
    { SQLITE_RANGE,       "SQLITE_RANGE" },
    { SQLITE_NOTADB,      "SQLITE_NOTADB" },
    { SQLITE_NOTICE,      "SQLITE_NOTICE" },
    { SQLITE_WARNING,     "SQLITE_WARNING" },
    { SQLITE_ABORT_ROLLBACK,         "SQLITE_ABORT_ROLLBACK" },
    { SQLITE_BUSY_RECOVERY,          "SQLITE_BUSY_RECOVERY" },
    { SQLITE_BUSY_SNAPSHOT,          "SQLITE_BUSY_SNAPSHOT" },
    { SQLITE_LOCKED_SHAREDCACHE,     "SQLITE_LOCKED_SHAREDCACHE" },
    { SQLITE_READONLY_DBMOVED,       "SQLITE_READONLY_DBMOVED" },
    { SQLITE_READONLY_ROLLBACK,      "SQLITE_READONLY_ROLLBACK" },
    { SQLITE_IOERR_READ,             "SQLITE_IOERR_READ" },
    { SQLITE_IOERR_SHORT_READ,       "SQLITE_IOERR_SHORT_READ" },
    { SQLITE_IOERR_WRITE,            "SQLITE_IOERR_WRITE" },
    { SQLITE_IOERR_FSYNC,            "SQLITE_IOERR_FSYNC" },
    { SQLITE_IOERR_DIR_FSYNC,        "SQLITE_IOERR_DIR_FSYNC" },
    { SQLITE_IOERR_TRUNCATE,         "SQLITE_IOERR_TRUNCATE" },
    { SQLITE_IOERR_FSTAT,            "SQLITE_IOERR_FSTAT" },
    { SQLITE_IOERR_LOCK,             "SQLITE_IOERR_LOCK" },
    { SQLITE_IOERR_NOMEM,            "SQLITE_IOERR_NOMEM" },
    { SQLITE_IOERR_DELETE,           "SQLITE_IOERR_DELETE" },
    { SQLITE_CONSTRAINT_CHECK,       "SQLITE_CONSTRAINT_CHECK" },
    { SQLITE_CONSTRAINT_COMMITHOOK,  "SQLITE_CONSTRAINT_COMMITHOOK" },
    { SQLITE_CONSTRAINT_FOREIGNKEY,  "SQLITE_CONSTRAINT_FOREIGNKEY" },
    { SQLITE_CONSTRAINT_FUNCTION,    "SQLITE_CONSTRAINT_FUNCTION" },
    { SQLITE_CONSTRAINT_NOTNULL,     "SQLITE_CONSTRAINT_NOTNULL" },
    { SQLITE_CONSTRAINT_PRIMARYKEY,  "SQLITE_CONSTRAINT_PRIMARYKEY" },
    { SQLITE_CONSTRAINT_TRIGGER,     "SQLITE_CONSTRAINT_TRIGGER" },
    { SQLITE_CONSTRAINT_UNIQUE,      "SQLITE_CONSTRAINT_UNIQUE" },
    { SQLITE_CONSTRAINT_VTAB,        "SQLITE_CONSTRAINT_VTAB" },
    { SQLITE_CONSTRAINT_ROWID,       "SQLITE_CONSTRAINT_ROWID" },
  };
  const char *zName = 0;
  size_t i;
  for(i=0; zName==0 && i<sizeof(aCode)/sizeof(aCode[0]); i++){
    if( aCode[i].rc==rc ) zName = aCode[i].zName;
  }
  for(i=0; zName==0 && i<sizeof(aCode)/sizeof(aCode[0]); i++){
    if( aCode[i].rc==(rc&0xff) ) zName = aCode[i].zName;
  }
  return zName ? zName : "SQLITE_ERROR";
}

/*
** Report that zFunc was called while a statement writes (E4): from inside
** it, or while one is paused unfinished.
*/
ATM_PRIVATE void atomicErrorWriter(sqlite3_context *ctx, AtomicConn *p,
                                   const char *zFunc){
  if( atomicWriterActive(p)==2 ){
    atomicError(ctx, SQLITE_ERROR,
        "%s(): a statement that writes has not finished (an INSERT, UPDATE "
        "or DELETE ... RETURNING whose rows were not all read); read its "
        "rows to the end or reset it first", zFunc);
  }else{
    atomicError(ctx, SQLITE_ERROR,
        "%s(): cannot be called from a statement that writes (a trigger, "
        "or INSERT/UPDATE/DELETE ... %s()); call it from a statement of "
        "its own, such as SELECT %s()", zFunc, zFunc, zFunc);
  }
}

/*
** The text of the current orphan state (X5), without the function name.
*/
ATM_PRIVATE const char *atomicOrphanText(AtomicConn *p){
  switch( p->eOrphan ){
    case ATM_END_COMMIT:
      return "the transaction was committed outside of the 'atomic' block";
    case ATM_END_ROLLBACK:
      return "the transaction was rolled back outside of the 'atomic' block";
    default:
      return "the transaction ended outside of the 'atomic' block";
  }
}

/*
** DOOMED: roll back the transaction the extension could not roll back
** earlier, now that the caller is a statement of its own.  If statements
** changed rows in it since, it is the application's to end: leave it and
** say so.  Returns 0 if it is gone; otherwise sets the error of ctx and
** returns non-zero.
*/
ATM_PRIVATE int atomicRepair(AtomicConn *p, sqlite3_context *ctx,
                             const char *zFunc){
  char *zErr = 0;
  int rc;
  assert( p->bDoomed && p->nBlock==0 );
  if( sqlite3_total_changes(p->db)!=p->nDoomChanges ){
    atomicError(ctx, SQLITE_ERROR, "%s(): %s, and statements changed rows "
        "in it since; end it first: atomic_rollback() discards everything "
        "in it, COMMIT keeps everything in it, the failed work included",
        zFunc, atomicDoomedText);
    return 1;
  }
  if( atomicEndTxn(p, 0, &rc, &zErr)==ATM_END_NONE ){
    atomicError(ctx, rc, "%s(): %s, and rolling it back failed again: %s",
                zFunc, atomicDoomedText, atomicOom(zErr));
    sqlite3_free(zErr);
    return 1;
  }
  sqlite3_free(zErr);
  return 0;
}

/*
** The checks that guard the SQL functions, after atomicSync(), in this
** order:
**
**   ATM_CHECK_WRITER   called from a statement that writes (E4)
**   ATM_CHECK_FORBID   a block is open, orphans included (L1, P3)
**   ATM_CHECK_ORPHAN   orphaned blocks remain (X5)
**   ATM_CHECK_BROKEN   a failure broke the transaction (F3)
**   ATM_CHECK_DOOMED   a doomed transaction is rolled back first
**
** If one fails, set the error on ctx and return non-zero.
*/
ATM_PRIVATE int atomicCheck(AtomicConn *p, sqlite3_context *ctx,
                            const char *zFunc, int mCheck){
  atomicSync(p);
  if( (mCheck & ATM_CHECK_WRITER) && atomicWriterActive(p) ){
    atomicErrorWriter(ctx, p, zFunc);
    return 1;
  }
  if( (mCheck & ATM_CHECK_FORBID) && p->nBlock>0 ){
    atomicError(ctx, SQLITE_ERROR, "%s(): %s", zFunc, atomicForbiddenText);
    return 1;
  }
  if( (mCheck & ATM_CHECK_ORPHAN) && p->eOrphan ){
    atomicError(ctx, SQLITE_ERROR,
        "%s(): %s; call atomic_exit() for each of the %d open blocks first",
        zFunc, atomicOrphanText(p), p->nBlock);
    return 1;
  }
  if( (mCheck & ATM_CHECK_BROKEN) && p->bBroken ){
    atomicError(ctx, SQLITE_ERROR, "%s(): %s", zFunc, atomicBrokenText);
    return 1;
  }
  if( (mCheck & ATM_CHECK_DOOMED) && p->bDoomed ){
    return atomicRepair(p, ctx, zFunc);
  }
  return 0;
}

/*
** Set the error of ctx to a printf-style message and result code rc.
** Without memory for the message, the error is SQLite's "out of memory".
** A message with SQLITE_NOMEM keeps its text: it says what happened
** before memory ran out (a block rolled back, a transaction still open).
*/
ATM_PRIVATE void atomicError(sqlite3_context *ctx, int rc,
                             const char *zFmt, ...){
  va_list ap;
  char *z;
  va_start(ap, zFmt);
  z = connVmprintf(zFmt, ap);
  va_end(ap);
  if( z==0 ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_error(ctx, z, -1);
    sqlite3_result_error_code(ctx, rc);
  }
  sqlite3_free(z);
}

/*
** The message of the statement the extension just ran, saying so if SQLite
** rolled back the transaction because of it (the blocks are then
** orphans).  In memory from sqlite3_malloc(), or NULL on OOM.
*/
ATM_PRIVATE char *atomicStepError(AtomicConn *p){
  if( !atomicStepEnded(p) ) return atomicMprintf("%s", atomicErrmsg(p));
  if( p->nBlock>0 ){
    return atomicMprintf("%s; SQLite rolled back the transaction: call "
        "atomic_exit() for each of the %d open blocks", atomicErrmsg(p),
        p->nBlock);
  }
  return atomicMprintf("%s; SQLite rolled back the transaction",
                       atomicErrmsg(p));
}

/*
** Report the error of the statement the extension just ran as the error
** of ctx, keeping its result code (atomicStepError()).
*/
ATM_PRIVATE void atomicErrorDb(sqlite3_context *ctx, AtomicConn *p, int rc,
                               const char *zFunc){
  char *z = atomicStepError(p);
  atomicError(ctx, rc, "%s(): %s", zFunc, atomicOom(z));
  sqlite3_free(z);
}

/*
** Parse the integer forms SPEC section 2 accepts: an INTEGER; a REAL with
** no fractional part within the 64-bit range; a TEXT of an optional sign
** and decimal digits within that range (P1).  Returns SQLITE_OK,
** SQLITE_NOMEM, or SQLITE_MISMATCH for anything else (NULL included).
*/
static int connParseInt(sqlite3_value *pVal, i64 *piOut){
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
      u64 u = 0;
      u64 mx = (u64)1 << 63;           /* |smallest i64| */
      if( z==0 ) return SQLITE_NOMEM;
      if( n>0 && (z[0]=='-' || z[0]=='+') ){ bNeg = z[0]=='-'; i++; }
      if( i==n ) break;
      for(; i<n && z[i]>='0' && z[i]<='9'; i++){
        unsigned d = z[i]-'0';
        if( u>(mx-d)/10 ) return SQLITE_MISMATCH;   /* u*10+d > mx */
        u = u*10 + d;
      }
      if( i==n && (bNeg ? u<=mx : u<mx) ){
        *piOut = bNeg ? (i64)(0-u) : (i64)u;
        return SQLITE_OK;
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
ATM_PRIVATE int atomicArgBool(sqlite3_context *ctx, const char *zFunc,
                              const char *zArg, sqlite3_value *pVal,
                              int *pbOut){
  i64 i = 0;
  int rc = connParseInt(pVal, &i);
  if( rc==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else if( rc!=SQLITE_OK ){
    atomicError(ctx, SQLITE_ERROR, "%s(): %s must be an integer: 0 for "
                "false, any other integer for true", zFunc, zArg);
  }else{
    *pbOut = i!=0;
  }
  return rc!=SQLITE_OK;
}
