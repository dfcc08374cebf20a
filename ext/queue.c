/*
** queue.c -- on_commit() and on_commit_robust(): the callback queue, the
** shared statement texts, and running callbacks after a commit.
**
**   on_commit(SQL [, ARG ...])         -> 1 if queued, 0 if it ran at once
**   on_commit_robust(SQL [, ARG ...])  -> the same; a failure is logged
**
** SQL is exactly one statement (a trailing ';', white space and comments
** are fine) and must prepare now: its tables must exist.  The ARGs are
** bound to its parameters ?1, ?2, ... and must be exactly as many as
** sqlite3_bind_parameter_count() says.  Inside an atomic block the
** callback is queued (C2); it runs after the outermost block commits (C7)
** or is discarded if what queued it is rolled back (C6).  With no block
** and no transaction it runs at once (C3).  With no block inside a
** transaction (manual mode) it is refused (C4), and from a statement that
** writes in autocommit mode too (C5).  A NULL or non-text SQL, a bad
** statement or a wrong argument count is an error and nothing is queued
** (C1).
**
** A plain callback that fails after a commit stops the run: the callbacks
** after it are discarded and the commit's atomic_exit() raises an error
** that starts "on_commit callback failed after commit:".  A robust one is
** logged through sqlite3_log() and the run goes on.
**
** HOW IT WORKS
**
** A callback is one allocation: the struct, its argument values and the
** bytes of its text and blob arguments.  Its statement text is shared by
** every callback queued with the same text, through a hash table of
** AtomicSql entries.  The entries of the ATOMIC_SQL_CACHE most recently
** used texts also keep a prepared statement, so queuing a callback whose
** text was seen before costs a hash lookup and one allocation, and running
** it costs a bind and a step.
**
** The queues are lists (atomicInt.h).  To run the ready queue it is
** detached first and then run in order, each callback in autocommit mode;
** callbacks queued by a block that a running callback opens go to the
** fresh ready queue and run when that block commits, before the rest of
** the outer run (C8).
*/
#include "atomicInt.h"
#include <stddef.h>

#define ATOMIC_SQL_CACHE 32    /* Callback statements kept prepared */

/**************************************************************************
** Shared statement texts
*/

/* FNV-1a hash of n bytes of z */
static unsigned int atomic_hash(const char *z, int n){
  unsigned int h = 2166136261u;
  int i;
  for(i=0; i<n; i++){
    h ^= (unsigned char)z[i];
    h *= 16777619u;
  }
  return h;
}

static void atomic_lru_unlink(AtomicConn *p, AtomicSql *pSql){
  if( pSql->pLruPrev ){
    pSql->pLruPrev->pLruNext = pSql->pLruNext;
  }else{
    p->pLruFirst = pSql->pLruNext;
  }
  if( pSql->pLruNext ){
    pSql->pLruNext->pLruPrev = pSql->pLruPrev;
  }else{
    p->pLruLast = pSql->pLruPrev;
  }
  pSql->pLruPrev = pSql->pLruNext = 0;
  p->nLru--;
}

static void atomic_lru_push(AtomicConn *p, AtomicSql *pSql){
  pSql->pLruPrev = 0;
  pSql->pLruNext = p->pLruFirst;
  if( p->pLruFirst ) p->pLruFirst->pLruPrev = pSql;
  p->pLruFirst = pSql;
  if( p->pLruLast==0 ) p->pLruLast = pSql;
  p->nLru++;
}

/*
** Unlink pSql from the hash table and free it.  It must hold no statement
** and no reference.
*/
static void atomic_sql_free(AtomicSql *pSql){
  AtomicConn *p = pSql->p;
  AtomicSql **pp = &p->aSqlHash[pSql->iHash & (p->nSqlHash-1)];
  while( *pp!=pSql ) pp = &(*pp)->pNext;
  *pp = pSql->pNext;
  p->nSql--;
  sqlite3_free(pSql);
}

/*
** Finalize the statement kept by pSql; free the entry too if no callback
** refers to it.
*/
static void atomic_sql_drop_stmt(AtomicSql *pSql){
  atomic_lru_unlink(pSql->p, pSql);
  sqlite3_finalize(pSql->pStmt);
  pSql->pStmt = 0;
  if( pSql->nRef==0 ) atomic_sql_free(pSql);
}

/*
** Keep pStmt as the prepared statement of pSql, as the most recently used,
** and drop the least recently used ones beyond ATOMIC_SQL_CACHE.  A
** statement that is running (a callback below us on the stack) is never
** dropped.
*/
static void atomic_sql_keep(AtomicSql *pSql, sqlite3_stmt *pStmt){
  AtomicConn *p = pSql->p;
  AtomicSql *pX = p->pLruLast;
  pSql->pStmt = pStmt;
  atomic_lru_push(p, pSql);
  while( p->nLru>ATOMIC_SQL_CACHE && pX ){
    AtomicSql *pPrev = pX->pLruPrev;
    if( pX!=pSql && !sqlite3_stmt_busy(pX->pStmt) ) atomic_sql_drop_stmt(pX);
    pX = pPrev;
  }
}

/*
** Drop one callback's reference to pSql.  An entry with no reference and
** no kept statement is freed.
*/
static void atomic_sql_unref(AtomicSql *pSql){
  if( --pSql->nRef==0 && pSql->pStmt==0 ) atomic_sql_free(pSql);
}

/*
** Finalize every kept callback statement (the entries that callbacks
** still refer to stay).
*/
void atomic_sql_finalize(AtomicConn *p){
  while( p->pLruFirst ) atomic_sql_drop_stmt(p->pLruFirst);
}

/*
** Free the hash table.  Every callback must be gone.
*/
void atomic_sql_clear(AtomicConn *p){
  int i;
  atomic_sql_finalize(p);
  for(i=0; i<p->nSqlHash; i++){
    while( p->aSqlHash[i] ){
      AtomicSql *pSql = p->aSqlHash[i];
      p->aSqlHash[i] = pSql->pNext;
      sqlite3_free(pSql);
    }
  }
  sqlite3_free(p->aSqlHash);
  p->aSqlHash = 0;
  p->nSqlHash = 0;
  p->nSql = 0;
}

/*
** Double the hash table when it holds more entries than buckets.
*/
static int atomic_sql_rehash(AtomicConn *p){
  if( p->nSql>=p->nSqlHash ){
    int nNew = p->nSqlHash ? p->nSqlHash*2 : 16;
    AtomicSql **aNew = atomic_malloc(sizeof(AtomicSql*)*(i64)nNew);
    int i;
    if( aNew==0 ) return SQLITE_NOMEM;
    memset(aNew, 0, sizeof(AtomicSql*)*(size_t)nNew);
    for(i=0; i<p->nSqlHash; i++){
      while( p->aSqlHash[i] ){
        AtomicSql *pSql = p->aSqlHash[i];
        p->aSqlHash[i] = pSql->pNext;
        pSql->pNext = aNew[pSql->iHash & (nNew-1)];
        aNew[pSql->iHash & (nNew-1)] = pSql;
      }
    }
    sqlite3_free(p->aSqlHash);
    p->aSqlHash = aNew;
    p->nSqlHash = nNew;
  }
  return SQLITE_OK;
}

/*
** True if the text after a statement holds nothing but white space,
** semicolons and comments.
*/
static int atomic_sql_tail_empty(const char *z){
  while( *z ){
    if( *z==';' || *z==' ' || *z=='\t' || *z=='\n' || *z=='\r'
     || *z=='\f' || *z=='\v'
    ){
      z++;
    }else if( z[0]=='-' && z[1]=='-' ){
      while( *z && *z!='\n' ) z++;
    }else if( z[0]=='/' && z[1]=='*' ){
      z += 2;
      while( *z && !(z[0]=='*' && z[1]=='/') ) z++;
      if( *z ) z += 2;
    }else{
      return 0;
    }
  }
  return 1;
}

/*
** Main's schema_version now, in *piVersion.  Inside a transaction that
** temp.atomic_txn follows, it is read once and remembered until the
** transaction ends: within a transaction only this connection can change
** the schema, and reading it costs as much as a small statement.
*/
static int atomic_schema_now(AtomicConn *p, int *piVersion){
  int rc;
  if( p->bSchema ){
    *piVersion = p->iSchema;
    return SQLITE_OK;
  }
  rc = atomic_schema_version(p, piVersion);
  if( rc==SQLITE_OK && p->bJoined ){
    p->iSchema = *piVersion;
    p->bSchema = 1;
  }
  return rc;
}

/*
** True if the kept statement of pSql may no longer describe the schema,
** so that it must be prepared again to check that its tables still exist
** (C1).  SQLite expires every statement when the TEMP schema changes, and
** a change of main's schema changes its schema_version, which is read once
** per transaction (atomic_schema_now).  Not seen, so that the callback
** fails when it runs instead of when it is queued: a change to the schema
** of an ATTACHed database, and one made in the same transaction after the
** text was first checked in it.
*/
static int atomic_sql_stale(AtomicConn *p, AtomicSql *pSql){
  int iSchema = 0;
#ifndef SQLITE_OMIT_DEPRECATED
# ifndef SQLITE_CORE
  if( sqlite3_api->expired==0 ) return 1;
# endif
  if( sqlite3_expired(pSql->pStmt) ) return 1;
#endif
  if( atomic_schema_now(p, &iSchema)!=SQLITE_OK ) return 1;
  return iSchema!=pSql->iSchema;
}

/*
** Prepare zSql (nSql bytes) as a callback statement: exactly one statement
** that prepares now.  On success *ppStmt is the statement.  Otherwise
** *pzErr is the message (NULL on OOM) and an error code is returned.
*/
static int atomic_sql_prepare(AtomicConn *p, const char *zSql, int nSql,
                              sqlite3_stmt **ppStmt, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  const char *zTail = 0;
  int rc = atomic_guard(p);
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v3(p->db, zSql, nSql, SQLITE_PREPARE_PERSISTENT,
                            &pStmt, &zTail);
  }
  if( rc!=SQLITE_OK ){
    *pzErr = atomic_mprintf("%s", sqlite3_errmsg(p->db));
  }else if( pStmt==0 ){
    rc = SQLITE_ERROR;
    *pzErr = atomic_mprintf("the SQL is empty; give one statement");
  }else if( zTail && (zTail-zSql)<nSql && !atomic_sql_tail_empty(zTail) ){
    rc = SQLITE_ERROR;
    *pzErr = atomic_mprintf("the SQL holds more than one statement; "
                            "give exactly one");
  }
  if( rc!=SQLITE_OK ){
    sqlite3_finalize(pStmt);
    pStmt = 0;
  }
  *ppStmt = pStmt;
  return rc;
}

/*
** Find or make the shared entry for statement text zSql (nSql bytes,
** nul-terminated), checking it as C1 asks.  The entry comes back with a
** kept statement, and with no reference taken.  Returns SQLITE_OK, or an error with *pzErr set to
** its message (NULL on OOM).
*/
static int atomic_sql_get(AtomicConn *p, const char *zSql, int nSql,
                          AtomicSql **ppOut, char **pzErr){
  unsigned int h = atomic_hash(zSql, nSql);
  AtomicSql *pSql = 0;
  sqlite3_stmt *pStmt = 0;
  int rc;
  if( p->nSqlHash ){
    for(pSql=p->aSqlHash[h & (p->nSqlHash-1)]; pSql; pSql=pSql->pNext){
      if( pSql->iHash==h && pSql->nSql==nSql
       && memcmp(pSql->zSql, zSql, nSql)==0
      ){
        break;
      }
    }
  }
  if( pSql && pSql->pStmt && !atomic_sql_stale(p, pSql) ){
    if( pSql!=p->pLruFirst ){
      atomic_lru_unlink(p, pSql);
      atomic_lru_push(p, pSql);
    }
    *ppOut = pSql;
    return SQLITE_OK;
  }
  rc = atomic_sql_prepare(p, zSql, nSql, &pStmt, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( pSql && pSql->pStmt && sqlite3_stmt_busy(pSql->pStmt) ){
    /* Checked; the kept statement is running, so it stays */
    sqlite3_finalize(pStmt);
    *ppOut = pSql;
    return SQLITE_OK;
  }
  if( pSql ){
    if( pSql->pStmt ){
      atomic_lru_unlink(p, pSql);
      sqlite3_finalize(pSql->pStmt);
      pSql->pStmt = 0;
    }
  }else{
    if( atomic_sql_rehash(p)!=SQLITE_OK
     || (pSql = atomic_malloc(sizeof(*pSql)+nSql+1))==0
    ){
      sqlite3_finalize(pStmt);
      *pzErr = 0;
      return SQLITE_NOMEM;
    }
    memset(pSql, 0, sizeof(*pSql));
    pSql->p = p;
    pSql->zSql = (char*)&pSql[1];
    memcpy(pSql->zSql, zSql, nSql);
    pSql->zSql[nSql] = 0;
    pSql->nSql = nSql;
    pSql->iHash = h;
    pSql->pNext = p->aSqlHash[h & (p->nSqlHash-1)];
    p->aSqlHash[h & (p->nSqlHash-1)] = pSql;
    p->nSql++;
  }
  pSql->nParam = sqlite3_bind_parameter_count(pStmt);
  if( atomic_schema_now(p, &pSql->iSchema)!=SQLITE_OK ) pSql->iSchema = -1;
  atomic_sql_keep(pSql, pStmt);
  *ppOut = pSql;
  return SQLITE_OK;
}

/**************************************************************************
** Callbacks and queues
*/

/*
** Free one reference to a callback; the last one frees it.
*/
void atomic_callback_unref(AtomicCallback *pCb){
  if( pCb && --pCb->nRef<=0 ){
    AtomicSql *pSql = pCb->pSql;
    sqlite3_free(pCb);
    atomic_sql_unref(pSql);
  }
}

/*
** Free the callbacks that follow pMark in queue pQ (all of them if pMark
** is NULL).  pMark must be in pQ.
*/
void atomic_queue_truncate(AtomicQueue *pQ, AtomicCallback *pMark){
  AtomicCallback *pCb = pMark ? pMark->pNext : pQ->pFirst;
  if( pMark ){
    pMark->pNext = 0;
  }else{
    pQ->pFirst = 0;
  }
  pQ->pLast = pMark;
  while( pCb ){
    AtomicCallback *pNext = pCb->pNext;
    pCb->pNext = 0;
    atomic_callback_unref(pCb);
    pCb = pNext;
  }
}

void atomic_queue_clear(AtomicQueue *pQ){
  atomic_queue_truncate(pQ, 0);
}

/*
** Move every callback of pSrc to the end of pDest.
*/
void atomic_queue_move(AtomicQueue *pDest, AtomicQueue *pSrc){
  if( pSrc->pFirst ){
    if( pDest->pLast ){
      pDest->pLast->pNext = pSrc->pFirst;
    }else{
      pDest->pFirst = pSrc->pFirst;
    }
    pDest->pLast = pSrc->pLast;
    pSrc->pFirst = pSrc->pLast = 0;
  }
}

static void atomic_queue_push(AtomicQueue *pQ, AtomicCallback *pCb){
  pCb->pNext = 0;
  if( pQ->pLast ){
    pQ->pLast->pNext = pCb;
  }else{
    pQ->pFirst = pCb;
  }
  pQ->pLast = pCb;
}

/*
** Make a callback for pSql with the nArg values apArg, holding one
** reference.  Returns NULL on OOM.
*/
static AtomicCallback *atomic_callback_new(AtomicSql *pSql, int nArg,
                                           sqlite3_value **apArg,
                                           int bRobust, int iDepth){
  i64 nByte = offsetof(AtomicCallback, aArg) + sizeof(AtomicValue)*(i64)nArg;
  AtomicCallback *pCb;
  char *zBuf;
  int i;
  for(i=0; i<nArg; i++){
    int eType = sqlite3_value_type(apArg[i]);
    if( eType==SQLITE_TEXT || eType==SQLITE_BLOB ){
      nByte += sqlite3_value_bytes(apArg[i]);
    }
  }
  pCb = atomic_malloc(nByte);
  if( pCb==0 ) return 0;
  memset(pCb, 0, offsetof(AtomicCallback, aArg));
  pCb->pSql = pSql;
  pCb->iDepth = iDepth;
  pCb->nArg = nArg;
  pCb->nRef = 1;
  pCb->bRobust = (u8)bRobust;
  zBuf = (char*)&pCb->aArg[nArg];
  for(i=0; i<nArg; i++){
    AtomicValue *pV = &pCb->aArg[i];
    const void *pData = 0;
    pV->eType = sqlite3_value_type(apArg[i]);
    pV->n = 0;
    switch( pV->eType ){
      case SQLITE_INTEGER: pV->u.i = sqlite3_value_int64(apArg[i]);  break;
      case SQLITE_FLOAT:   pV->u.r = sqlite3_value_double(apArg[i]); break;
      case SQLITE_TEXT:
        pData = sqlite3_value_text(apArg[i]);
        pV->n = sqlite3_value_bytes(apArg[i]);
        if( pData==0 ){ sqlite3_free(pCb); return 0; }
        break;
      case SQLITE_BLOB:
        pData = sqlite3_value_blob(apArg[i]);
        pV->n = sqlite3_value_bytes(apArg[i]);
        if( pData==0 && pV->n>0 ){ sqlite3_free(pCb); return 0; }
        break;
      default:
        pV->eType = SQLITE_NULL;
        break;
    }
    if( pV->eType==SQLITE_TEXT || pV->eType==SQLITE_BLOB ){
      if( pV->n>0 ) memcpy(zBuf, pData, pV->n);
      pV->u.z = zBuf;
      zBuf += pV->n;
    }
  }
  pSql->nRef++;
  return pCb;
}

/*
** A callback left a block or a transaction open: roll that back, so that
** the next callback runs in autocommit mode as it should.  Callbacks only
** run with no block open and no transaction.
*/
static void atomic_callback_unwind(AtomicConn *p){
  char *zErr = 0;
  while( p->nBlock>0 ) atomic_block_pop(p);
  p->eOrphan = ATOMIC_ORPHAN_NONE;
  if( !sqlite3_get_autocommit(p->db) ){
    atomic_end_txn(p, 0, &zErr);
    sqlite3_free(zErr);
  }
}

/*
** Run one callback to completion, with no block open and no transaction.
** Returns SQLITE_OK, or an error code with *pzErr set to its message (NULL
** on OOM).
*/
static int atomic_callback_run(AtomicConn *p, AtomicCallback *pCb,
                               char **pzErr){
  AtomicSql *pSql = pCb->pSql;
  sqlite3_stmt *pStmt = pSql->pStmt;
  int bOwn = 0;
  int rc = SQLITE_OK;
  int i;
  *pzErr = 0;
  if( p->nRunDepth>=ATOMIC_MAX_RUN_DEPTH ){
    *pzErr = atomic_mprintf("on_commit() callbacks are nested more than %d "
                            "deep", ATOMIC_MAX_RUN_DEPTH);
    return SQLITE_ERROR;
  }
  if( pStmt==0 || sqlite3_stmt_busy(pStmt) ){
    /* Not kept, or a callback with the same text is running below us */
    rc = atomic_sql_prepare(p, pSql->zSql, pSql->nSql, &pStmt, pzErr);
    if( rc!=SQLITE_OK ) return rc;
    if( pSql->pStmt==0 ){
      atomic_sql_keep(pSql, pStmt);
    }else{
      bOwn = 1;
    }
  }
  for(i=0; rc==SQLITE_OK && i<pCb->nArg; i++){
    AtomicValue *pV = &pCb->aArg[i];
    switch( pV->eType ){
      case SQLITE_INTEGER:
        rc = sqlite3_bind_int64(pStmt, i+1, pV->u.i);
        break;
      case SQLITE_FLOAT:
        rc = sqlite3_bind_double(pStmt, i+1, pV->u.r);
        break;
      case SQLITE_TEXT:
        rc = sqlite3_bind_text(pStmt, i+1, pV->u.z, pV->n, SQLITE_STATIC);
        break;
      case SQLITE_BLOB:
        rc = sqlite3_bind_blob(pStmt, i+1, pV->u.z, pV->n, SQLITE_STATIC);
        break;
      default:
        rc = sqlite3_bind_null(pStmt, i+1);
        break;
    }
  }
  if( rc==SQLITE_OK ){
    p->nRunDepth++;
    while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){}
    p->nRunDepth--;
    if( rc==SQLITE_DONE ) rc = SQLITE_OK;
  }
  if( rc!=SQLITE_OK ){
    rc = sqlite3_extended_errcode(p->db);
    *pzErr = atomic_mprintf("%s", sqlite3_errmsg(p->db));
  }
  sqlite3_reset(pStmt);
  sqlite3_clear_bindings(pStmt);
  if( bOwn ) sqlite3_finalize(pStmt);
  if( rc==SQLITE_OK && (p->nBlock>0 || !sqlite3_get_autocommit(p->db)) ){
    atomic_callback_unwind(p);
    rc = SQLITE_ERROR;
    *pzErr = atomic_mprintf("the callback left an 'atomic' block or a "
                            "transaction open; it was rolled back");
  }
  return rc;
}

/*
** Run the ready queue (C7).  Returns SQLITE_OK, or the error code of the
** plain callback that failed, with *pzErr set to the full message; the
** callbacks after it are then discarded.  If there is no memory for the
** message, SQLITE_NOMEM with *pzErr NULL.
*/
int atomic_queue_run_ready(AtomicConn *p, char **pzErr){
  AtomicCallback *pList = p->ready.pFirst;
  int rc = SQLITE_OK;
  *pzErr = 0;
  p->ready.pFirst = p->ready.pLast = 0;
  while( pList ){
    AtomicCallback *pCb = pList;
    char *zErr = 0;
    pList = pCb->pNext;
    pCb->pNext = 0;
    rc = atomic_callback_run(p, pCb, &zErr);
    if( rc!=SQLITE_OK && pCb->bRobust ){
      char zClip[ATOMIC_CLIP+4];
      sqlite3_log(rc, "Error calling %s in on_commit() during transaction "
                  "(%s).", atomic_clip(pCb->pSql->zSql, zClip),
                  zErr ? zErr : "out of memory");
      rc = SQLITE_OK;
    }else if( rc!=SQLITE_OK ){
      int nLeft = 0;
      AtomicCallback *pX;
      for(pX=pList; pX; pX=pX->pNext) nLeft++;
      if( zErr ){
        char zClip[ATOMIC_CLIP+4];
        *pzErr = atomic_mprintf("on_commit callback failed after commit: "
            "%s: %s (the transaction was committed; %d later callback%s not "
            "run)", atomic_clip(pCb->pSql->zSql, zClip), zErr,
            nLeft, nLeft==1 ? " was" : "s were");
      }
      /* With no memory for the message the error is SQLITE_NOMEM */
      if( *pzErr==0 ) rc = SQLITE_NOMEM;
      while( pList ){
        pX = pList;
        pList = pX->pNext;
        atomic_callback_unref(pX);
      }
    }
    sqlite3_free(zErr);
    atomic_callback_unref(pCb);
    if( rc!=SQLITE_OK ) break;
  }
  return rc;
}

/**************************************************************************
** The SQL functions
*/

static void atomic_on_commit(sqlite3_context *ctx, int argc,
                             sqlite3_value **argv, int bRobust){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  const char *zFunc = bRobust ? "on_commit_robust" : "on_commit";
  const char *zSql;
  AtomicSql *pSql = 0;
  AtomicCallback *pCb;
  char *zErr = 0;
  int rc;

  if( argc<1 || sqlite3_value_type(argv[0])!=SQLITE_TEXT ){
    atomic_error(ctx, SQLITE_ERROR, "%s(): the first argument must be the "
                 "text of one SQL statement", zFunc);
    return;
  }
  if( atomic_check(p, ctx, zFunc, ATOMIC_CHECK_ORPHAN|ATOMIC_CHECK_BROKEN) ){
    return;
  }
  zSql = (const char*)sqlite3_value_text(argv[0]);
  if( zSql==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  rc = atomic_sql_get(p, zSql, sqlite3_value_bytes(argv[0]), &pSql, &zErr);
  if( rc!=SQLITE_OK ){
    atomic_error(ctx, rc, "%s(): %s", zFunc, zErr ? zErr : "out of memory");
    sqlite3_free(zErr);
    return;
  }
  if( pSql->nParam!=argc-1 ){
    atomic_error(ctx, SQLITE_ERROR, "%s(): the statement has %d parameter%s "
        "but %d argument%s given after it", zFunc, pSql->nParam,
        pSql->nParam==1 ? "" : "s", argc-1, argc==2 ? " was" : "s were");
    return;
  }

  if( p->nBlock==0 ){
    if( !sqlite3_get_autocommit(p->db) ){
      atomic_error(ctx, SQLITE_ERROR, "%son_commit() cannot be used in "
          "manual transaction management; queue callbacks inside an "
          "'atomic' block, or commit first",
          bRobust ? "on_commit_robust(): " : "");
      return;
    }
    if( atomic_writer_active(p) ){
      atomic_error(ctx, SQLITE_ERROR, "%s(): called by a statement that "
          "writes, with no 'atomic' block open; wrap that statement in a "
          "block: SELECT atomic_enter(); <the statement>; "
          "SELECT atomic_exit();", zFunc);
      return;
    }
  }

  pCb = atomic_callback_new(pSql, argc-1, &argv[1], bRobust, p->nBlock);
  if( pCb==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if( p->nBlock>0 ){
    atomic_queue_push(&p->pending, pCb);
    sqlite3_result_int(ctx, 1);
    return;
  }

  /* C3: no block and no transaction: run it now */
  rc = atomic_callback_run(p, pCb, &zErr);
  if( rc==SQLITE_OK ){
    sqlite3_result_int(ctx, 0);
  }else if( bRobust ){
    char zClip[ATOMIC_CLIP+4];
    sqlite3_log(rc, "Error calling %s in on_commit() (%s).",
                atomic_clip(pSql->zSql, zClip), zErr ? zErr : "out of memory");
    sqlite3_result_int(ctx, 0);
  }else if( zErr==0 ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_error(ctx, zErr, -1);
    sqlite3_result_error_code(ctx, rc);
  }
  sqlite3_free(zErr);
  atomic_callback_unref(pCb);
}

void atomicOnCommitFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  atomic_on_commit(ctx, argc, argv, 0);
}

void atomicOnCommitRobustFunc(sqlite3_context *ctx, int argc,
                              sqlite3_value **argv){
  atomic_on_commit(ctx, argc, argv, 1);
}

/**************************************************************************
** JSON rendering of a callback's arguments, for atomic_pending
*/

typedef struct AtomicBuf AtomicBuf;
struct AtomicBuf {
  char *z;                  /* Text so far, nul-terminated */
  i64 n;                    /* Bytes in z */
  i64 nAlloc;               /* Bytes allocated */
  int bOom;                 /* An allocation failed */
};

static void atomic_buf_append(AtomicBuf *pBuf, const char *z, i64 n){
  if( pBuf->bOom ) return;
  if( pBuf->n+n+1>pBuf->nAlloc ){
    i64 nNew = pBuf->nAlloc ? pBuf->nAlloc*2 : 64;
    char *zNew;
    while( nNew<pBuf->n+n+1 ) nNew *= 2;
    zNew = atomic_realloc(pBuf->z, nNew);
    if( zNew==0 ){
      pBuf->bOom = 1;
      return;
    }
    pBuf->z = zNew;
    pBuf->nAlloc = nNew;
  }
  memcpy(&pBuf->z[pBuf->n], z, n);
  pBuf->n += n;
  pBuf->z[pBuf->n] = 0;
}

/* Append n bytes of z as a JSON string */
static void atomic_buf_json_string(AtomicBuf *pBuf, const char *z, int n){
  int i;
  atomic_buf_append(pBuf, "\"", 1);
  for(i=0; i<n; i++){
    unsigned char c = (unsigned char)z[i];
    char zEsc[8];
    if( c=='"' || c=='\\' ){
      zEsc[0] = '\\';
      zEsc[1] = (char)c;
      atomic_buf_append(pBuf, zEsc, 2);
    }else if( c<0x20 ){
      sqlite3_snprintf(sizeof(zEsc), zEsc, "\\u%04x", c);
      atomic_buf_append(pBuf, zEsc, 6);
    }else{
      atomic_buf_append(pBuf, (const char*)&z[i], 1);
    }
  }
  atomic_buf_append(pBuf, "\"", 1);
}

/*
** The arguments of pCb as a JSON array, in memory from sqlite3_malloc(), or
** NULL on OOM.  Integers and reals are numbers (an infinity is written as
** SQLite's JSON functions write it, 9e999, and a NaN as null), text is a
** string, a blob is the string "x'<hex>'".
*/
char *atomic_callback_args_json(AtomicCallback *pCb){
  AtomicBuf buf;
  int i;
  memset(&buf, 0, sizeof(buf));
  atomic_buf_append(&buf, "[", 1);
  for(i=0; i<pCb->nArg; i++){
    AtomicValue *pV = &pCb->aArg[i];
    char zNum[40];
    if( i>0 ) atomic_buf_append(&buf, ",", 1);
    switch( pV->eType ){
      case SQLITE_INTEGER:
        sqlite3_snprintf(sizeof(zNum), zNum, "%lld", pV->u.i);
        atomic_buf_append(&buf, zNum, (i64)strlen(zNum));
        break;
      case SQLITE_FLOAT:
        if( pV->u.r!=pV->u.r ){
          sqlite3_snprintf(sizeof(zNum), zNum, "null");
        }else if( pV->u.r>1.7976931348623157e308 ){
          sqlite3_snprintf(sizeof(zNum), zNum, "9e999");
        }else if( pV->u.r< -1.7976931348623157e308 ){
          sqlite3_snprintf(sizeof(zNum), zNum, "-9e999");
        }else{
          sqlite3_snprintf(sizeof(zNum), zNum, "%!.17g", pV->u.r);
        }
        atomic_buf_append(&buf, zNum, (i64)strlen(zNum));
        break;
      case SQLITE_TEXT:
        atomic_buf_json_string(&buf, pV->u.z, pV->n);
        break;
      case SQLITE_BLOB: {
        static const char aHex[] = "0123456789abcdef";
        int j;
        atomic_buf_append(&buf, "\"x'", 3);
        for(j=0; j<pV->n; j++){
          char zHex[2];
          zHex[0] = aHex[((unsigned char)pV->u.z[j])>>4];
          zHex[1] = aHex[((unsigned char)pV->u.z[j])&0xf];
          atomic_buf_append(&buf, zHex, 2);
        }
        atomic_buf_append(&buf, "'\"", 2);
        break;
      }
      default:
        atomic_buf_append(&buf, "null", 4);
        break;
    }
  }
  atomic_buf_append(&buf, "]", 1);
  if( buf.bOom ){
    sqlite3_free(buf.z);
    return 0;
  }
  return buf.z;
}
