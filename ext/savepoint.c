/*
** savepoint.c -- manual savepoints, Django's savepoint API.
**
**   savepoint()                -> a new savepoint id (TEXT), or NULL when
**                                 no transaction is open (no SQL then)
**   savepoint_commit(SID)      -> NULL; RELEASE of that savepoint
**   savepoint_rollback(SID)    -> NULL; ROLLBACK TO it (it stays open) and
**                                 discard the callbacks queued after it
**   clean_savepoints()         -> NULL; the next id is the first one again
**
** Ids are "<prefix>_x<n>": a random per-connection prefix and a counter
** that keeps counting across transactions until clean_savepoints().  A
** NULL SID, or no open transaction, makes savepoint_commit() and
** savepoint_rollback() do nothing.  An unknown or already ended SID is
** the error "no such savepoint: SID".  A savepoint may only be released
** or rolled back inside the block that made it (or, if that block made no
** savepoint of its own and has exited, the block around it): one made
** outside the innermost open block is refused, because ending it would
** end that block's own savepoint too.  See SPEC.md rules S1-S3 and P4.
**
** HOW IT WORKS
**
** Each open manual savepoint is an AtomicManual record (state.c) holding
** its serial number, the block depth it belongs to, and its level in the
** savepoint stack that temp.atomic_txn keeps (txn.c).  A level entry owned
** by -serial that no longer exists means raw SQL ended the savepoint, and
** the record is dropped.
*/
#include "atomicInt.h"

/*
** savepoint()
*/
ATM_PRIVATE void atomicSavepointFunc(sqlite3_context *ctx, int argc,
                                     sqlite3_value **argv){
  AtomicConn *p = atomicConn(ctx);
  i64 iSerial = p->iSerial+1;
  char *zSid = 0;
  char *zSql = 0;
  char *zErr = 0;
  int iLevel = 0;
  int rc;
  (void)argc; (void)argv;
  if( atomicCheck(p, ctx, "savepoint", ATM_CHECK_WRITER|ATM_CHECK_ORPHAN
                  |ATM_CHECK_BROKEN|ATM_CHECK_DOOMED) ){
    return;
  }
  if( sqlite3_get_autocommit(p->db) ){
    sqlite3_result_null(ctx);
    return;
  }
  atomicManualPrune(p);
  if( atomicManualReserve(p) ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  rc = atomicJoin(p, &zErr);
  if( rc!=SQLITE_OK ){
    atomicError(ctx, rc, "savepoint(): cannot follow the transaction "
                "through temp.atomic_txn: %s", atomicOom(zErr));
    sqlite3_free(zErr);
    return;
  }
  zSid = atomicMprintf("%s_x%lld", p->zPrefix, iSerial);
  zSql = zSid ? atomicMprintf("SAVEPOINT \"%w\"", zSid) : 0;
  if( zSql==0 ){
    sqlite3_free(zSid);
    sqlite3_result_error_nomem(ctx);
    return;
  }
  rc = atomicSpOpen(p, -iSerial, zSql, &iLevel);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ){
    sqlite3_free(zSid);
    atomicErrorDb(ctx, p, rc, "savepoint");
    return;
  }
  p->iSerial = iSerial;
  atomicManualAdd(p, iSerial, iLevel);
  sqlite3_result_text(ctx, zSid, -1, sqlite3_free);
}

/*
** The index in p->aManual of the open savepoint whose id is zSid, or -1.
*/
static int manualFind(AtomicConn *p, const char *zSid){
  int nPrefix = (int)strlen(p->zPrefix);
  i64 iSerial = 0;
  int i;
  if( strncmp(zSid, p->zPrefix, nPrefix)!=0
   || zSid[nPrefix]!='_' || zSid[nPrefix+1]!='x'
  ){
    return -1;
  }
  for(i=nPrefix+2; zSid[i]>='0' && zSid[i]<='9' && i<nPrefix+20; i++){
    iSerial = iSerial*10 + (zSid[i]-'0');
  }
  if( zSid[i]!=0 || i==nPrefix+2 || zSid[nPrefix+2]=='0' ) return -1;
  for(i=p->nManual-1; i>=0; i--){
    if( p->aManual[i].iSerial==iSerial ) return i;
  }
  return -1;
}

/*
** savepoint_commit(sid) and savepoint_rollback(sid)
*/
static void manualEnd(sqlite3_context *ctx, sqlite3_value *pSid,
                      int bRollback){
  AtomicConn *p = atomicConn(ctx);
  const char *zFunc = bRollback ? "savepoint_rollback" : "savepoint_commit";
  const char *zSid;
  AtomicManual *pM;
  u32 nEnd;
  int i;
  int rc;
  if( atomicCheck(p, ctx, zFunc, ATM_CHECK_WRITER|ATM_CHECK_ORPHAN
                  |ATM_CHECK_BROKEN|ATM_CHECK_DOOMED) ){
    return;
  }
  if( sqlite3_value_type(pSid)==SQLITE_NULL || sqlite3_get_autocommit(p->db) ){
    sqlite3_result_null(ctx);
    return;
  }
  zSid = (const char*)sqlite3_value_text(pSid);
  if( zSid==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  atomicManualPrune(p);
  i = manualFind(p, zSid);
  if( i<0 ){
    char zClip[ATM_CLIP+4];
    atomicError(ctx, SQLITE_ERROR, "%s(): no such savepoint: %s",
                zFunc, atomicClip(zSid, zClip));
    return;
  }
  pM = &p->aManual[i];
  if( pM->iDepth<p->nBlock ){
    atomicError(ctx, SQLITE_ERROR, "%s(): savepoint %s was made outside "
        "the innermost 'atomic' block; ending it would end that block's "
        "savepoint too, so end it after the block exits", zFunc, zSid);
    return;
  }
  nEnd = p->nEnd;
  rc = atomicSpClose(p, pM->iLevel, -pM->iSerial, bRollback, !bRollback,
                     zSid);
  atomicManualPrune(p);
  if( rc!=SQLITE_OK ){
    atomicError(ctx, rc, "%s(): %s%s", zFunc, atomicErrmsg(p),
                p->nEnd!=nEnd ? "; SQLite rolled back the whole transaction"
                              : "");
    return;
  }
  sqlite3_result_null(ctx);
}

/*
** savepoint_commit(sid)
*/
ATM_PRIVATE void atomicSavepointCommitFunc(sqlite3_context *ctx, int argc,
                                           sqlite3_value **argv){
  (void)argc;
  manualEnd(ctx, argv[0], 0);
}

/*
** savepoint_rollback(sid)
*/
ATM_PRIVATE void atomicSavepointRollbackFunc(sqlite3_context *ctx, int argc,
                                             sqlite3_value **argv){
  (void)argc;
  manualEnd(ctx, argv[0], 1);
}

/*
** clean_savepoints()
*/
ATM_PRIVATE void atomicCleanSavepointsFunc(sqlite3_context *ctx, int argc,
                                           sqlite3_value **argv){
  AtomicConn *p = atomicConn(ctx);
  (void)argc; (void)argv;
  atomicSync(p);
  atomicManualPrune(p);
  if( p->nManual>0 ){
    atomicError(ctx, SQLITE_ERROR, "clean_savepoints(): %d manual "
        "savepoint%s open; release or roll back %s first, or ids would "
        "repeat", p->nManual, p->nManual==1 ? " is" : "s are",
        p->nManual==1 ? "it" : "them");
    return;
  }
  p->iSerial = 0;
  sqlite3_result_null(ctx);
}
