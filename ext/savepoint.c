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
** Each open manual savepoint is an AtomicManual record holding its serial
** number, the block depth it belongs to, and its level in the savepoint
** stack that temp.atomic_txn keeps (txn.c).  A level entry owned by
** -serial that no longer exists means raw SQL ended the savepoint, and
** the record is dropped.  Records are ordered by level, and levels only
** end from the top, so dead records are always at the end of the array.
*/
#include "atomicInt.h"

/*
** Drop the records of manual savepoints that no longer exist.
*/
void atomic_manual_prune(AtomicConn *p){
  while( p->nManual>0 ){
    AtomicManual *pM = &p->aManual[p->nManual-1];
    if( atomic_level_alive(p, pM->iLevel, -pM->iSerial) ) break;
    p->nManual--;
  }
}

/*
** A block just exited: the manual savepoints that belonged to it and are
** still open now belong to the enclosing block.
*/
void atomic_manual_clamp(AtomicConn *p){
  int i;
  for(i=p->nManual-1; i>=0 && p->aManual[i].iDepth>p->nBlock; i--){
    p->aManual[i].iDepth = p->nBlock;
  }
}

/*
** savepoint()
*/
void atomicSavepointFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  i64 iSerial = p->iSerial+1;
  char *zSid = 0;
  char *zSql = 0;
  int iLevel = 0;
  int rc;
  (void)argc; (void)argv;
  if( atomic_check(p, ctx, "savepoint",
        ATOMIC_CHECK_WRITER|ATOMIC_CHECK_ORPHAN|ATOMIC_CHECK_BROKEN) ){
    return;
  }
  if( sqlite3_get_autocommit(p->db) ){
    sqlite3_result_null(ctx);
    return;
  }
  atomic_manual_prune(p);
  if( atomic_grow((void**)&p->aManual, &p->nManualAlloc, p->nManual+1,
                  sizeof(AtomicManual)) ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  rc = atomic_join(p);
  if( rc!=SQLITE_OK ){
    atomic_error(ctx, rc, "savepoint(): cannot follow the transaction "
                 "through temp.atomic_txn: %s", sqlite3_errmsg(p->db));
    return;
  }
  zSid = atomic_mprintf("%s_x%lld", p->zPrefix, iSerial);
  zSql = zSid ? atomic_mprintf("SAVEPOINT \"%w\"", zSid) : 0;
  if( zSql==0 ){
    sqlite3_free(zSid);
    sqlite3_result_error_nomem(ctx);
    return;
  }
  rc = atomic_sp_open(p, -iSerial, zSql, &iLevel);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ){
    sqlite3_free(zSid);
    atomic_error_db(ctx, p, rc, "savepoint");
    return;
  }
  p->iSerial = iSerial;
  p->aManual[p->nManual].iSerial = iSerial;
  p->aManual[p->nManual].iLevel = iLevel;
  p->aManual[p->nManual].iDepth = p->nBlock;
  p->nManual++;
  sqlite3_result_text(ctx, zSid, -1, sqlite3_free);
}

/*
** The index in p->aManual of the open savepoint whose id is zSid, or -1.
*/
static int atomic_manual_find(AtomicConn *p, const char *zSid){
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
static void atomic_savepoint_end(sqlite3_context *ctx, sqlite3_value *pSid,
                                 int bRollback){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  const char *zFunc = bRollback ? "savepoint_rollback" : "savepoint_commit";
  const char *zSid;
  AtomicManual *pM;
  int i;
  int rc;
  if( atomic_check(p, ctx, zFunc,
        ATOMIC_CHECK_WRITER|ATOMIC_CHECK_ORPHAN|ATOMIC_CHECK_BROKEN) ){
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
  atomic_manual_prune(p);
  i = atomic_manual_find(p, zSid);
  if( i<0 ){
    char zClip[ATOMIC_CLIP+4];
    atomic_error(ctx, SQLITE_ERROR, "%s(): no such savepoint: %s",
                 zFunc, atomic_clip(zSid, zClip));
    return;
  }
  pM = &p->aManual[i];
  if( pM->iDepth<p->nBlock ){
    atomic_error(ctx, SQLITE_ERROR, "%s(): savepoint %s was made outside "
        "the innermost 'atomic' block; ending it would end that block's "
        "savepoint too, so end it after the block exits", zFunc, zSid);
    return;
  }
  rc = atomic_sp_close(p, pM->iLevel, -pM->iSerial, bRollback, !bRollback,
                       zSid);
  atomic_manual_prune(p);
  if( rc!=SQLITE_OK ){
    atomic_error_db(ctx, p, rc, zFunc);
    return;
  }
  sqlite3_result_null(ctx);
}

void atomicSavepointCommitFunc(sqlite3_context *ctx, int argc,
                               sqlite3_value **argv){
  (void)argc;
  atomic_savepoint_end(ctx, argv[0], 0);
}

void atomicSavepointRollbackFunc(sqlite3_context *ctx, int argc,
                                 sqlite3_value **argv){
  (void)argc;
  atomic_savepoint_end(ctx, argv[0], 1);
}

/*
** clean_savepoints()
*/
void atomicCleanSavepointsFunc(sqlite3_context *ctx, int argc,
                               sqlite3_value **argv){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  (void)argc; (void)argv;
  atomic_sync(p);
  atomic_manual_prune(p);
  if( p->nManual>0 ){
    atomic_error(ctx, SQLITE_ERROR, "clean_savepoints(): %d manual "
        "savepoint%s open; release or roll back %s first, or ids would "
        "repeat", p->nManual, p->nManual==1 ? " is" : "s are",
        p->nManual==1 ? "it" : "them");
    return;
  }
  p->iSerial = 0;
  sqlite3_result_null(ctx);
}
