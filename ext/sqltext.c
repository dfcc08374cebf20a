/*
** sqltext.c -- the statement texts of callbacks, shared by every callback
** queued with the same text, each checked as C1 asks when it is queued.
**
** HOW IT WORKS
**
** A hash table of AtomicSql entries (atomicInt.h) holds each distinct text
** while a callback refers to it or while it keeps a prepared statement.
** The ATM_SQL_CACHE most recently used texts keep one, in a list ordered
** by use, so queuing a callback whose text was seen before costs a hash
** lookup, and running it costs a bind and a step.
**
** C1 asks that the tables a callback uses exist when it is queued, and
** that checking it takes no lock.  A kept statement proves it as long as
** SQLite's schema has not changed since the statement was checked, which
** is learnt without a lock (sqlSchemaNow):
**
**   - the TEMP schema: SQLite expires every statement when it changes, and
**     also when it reloads the schema of main after another connection
**     changed it (that resets the TEMP schema too, and disconnecting
**     temp.atomic_txn expires every statement);
**   - main's, outside a transaction that writes main: main's data version
**     (SQLITE_FCNTL_DATA_VERSION, kept by SQLite in memory) changes with
**     every commit of this connection and whenever it sees the file
**     changed by another; until it does, SQLite's schema of main stays as
**     it was.  A text is checked when it is prepared, and again each time
**     its callback runs successfully in autocommit mode (SQLite checks the
**     schema of every statement it runs);
**   - main's, inside a transaction that writes main, where this connection
**     can change the schema without a commit: main's schema_version, which
**     such a transaction reads without a new lock; in one that
**     temp.atomic_txn follows it is read once, as within it only this
**     connection can change the schema.
**
** Otherwise the text is prepared again, which SQLite does from the schema
** it holds in memory.  Not seen, so that the callback fails when it runs
** instead of when it is queued: a change to the schema of an ATTACHed
** database, one made in a transaction that writes main after the text was
** first checked in it, one another connection made that this connection
** has not read yet, and one made by a function that the callback's own
** statement calls.
*/
#include "atomicInt.h"

#define ATM_SQL_CACHE 32    /* Callback statements kept prepared */

/* FNV-1a hash of n bytes of z */
static unsigned int sqlHash(const char *z, int n){
  unsigned int h = 2166136261u;
  int i;
  for(i=0; i<n; i++){
    h ^= (unsigned char)z[i];
    h *= 16777619u;
  }
  return h;
}

/* Take pSql out of the list of entries that keep a statement */
static void sqlLruUnlink(AtomicConn *p, AtomicSql *pSql){
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

/* Put pSql first in the list of entries that keep a statement */
static void sqlLruPush(AtomicConn *p, AtomicSql *pSql){
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
static void sqlFree(AtomicSql *pSql){
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
static void sqlDropStmt(AtomicSql *pSql){
  sqlLruUnlink(pSql->p, pSql);
  sqlite3_finalize(pSql->pStmt);
  pSql->pStmt = 0;
  if( pSql->nRef==0 ) sqlFree(pSql);
}

/*
** Keep pStmt as the prepared statement of pSql, as the most recently used,
** and drop the least recently used ones beyond ATM_SQL_CACHE.  A statement
** that is running (a callback below us on the stack) is never dropped.
*/
ATM_PRIVATE void atomicSqlKeep(AtomicSql *pSql, sqlite3_stmt *pStmt){
  AtomicConn *p = pSql->p;
  AtomicSql *pX = p->pLruLast;
  pSql->pStmt = pStmt;
  sqlLruPush(p, pSql);
  while( p->nLru>ATM_SQL_CACHE && pX ){
    AtomicSql *pPrev = pX->pLruPrev;
    if( pX!=pSql && !sqlite3_stmt_busy(pX->pStmt) ) sqlDropStmt(pX);
    pX = pPrev;
  }
}

/*
** Drop one callback's reference to pSql.  An entry with no reference and
** no kept statement is freed.
*/
ATM_PRIVATE void atomicSqlUnref(AtomicSql *pSql){
  if( --pSql->nRef==0 && pSql->pStmt==0 ) sqlFree(pSql);
}

/*
** Finalize every kept callback statement (the entries that callbacks
** still refer to stay).
*/
ATM_PRIVATE void atomicSqlFinalize(AtomicConn *p){
  while( p->pLruFirst ) sqlDropStmt(p->pLruFirst);
}

/*
** Free the hash table.  Every callback must be gone, so once the kept
** statements are finalized every entry is gone too (an entry is freed
** when it has neither).
*/
ATM_PRIVATE void atomicSqlClear(AtomicConn *p){
  atomicSqlFinalize(p);
  assert( p->nSql==0 );
  sqlite3_free(p->aSqlHash);
  p->aSqlHash = 0;
  p->nSqlHash = 0;
  p->nSql = 0;
}

/*
** Double the hash table when it holds as many entries as buckets.
** Returns SQLITE_OK or SQLITE_NOMEM (the table is then unchanged).
*/
static int sqlRehash(AtomicConn *p){
  if( p->nSql>=p->nSqlHash ){
    int nNew = p->nSqlHash ? p->nSqlHash*2 : 16;
    AtomicSql **aNew = atomicMalloc(sizeof(AtomicSql*)*(i64)nNew);
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
static int sqlTailEmpty(const char *z){
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
** How SQLite's schema of main is now: inside a transaction that writes
** main, *piVersion gets main's schema_version and *pbData 0; elsewhere
** *piData gets main's data version and *pbData 1 (or 0 and *piVersion -1
** if there is none).  Returns SQLITE_OK or an error code.
*/
static int sqlSchemaNow(AtomicConn *p, int *piVersion, unsigned int *piData,
                        int *pbData){
  int rc;
  *pbData = 0;
  *piVersion = -1;
  if( sqlite3_txn_state(p->db, "main")!=SQLITE_TXN_WRITE ){
    if( sqlite3_file_control(p->db, "main", SQLITE_FCNTL_DATA_VERSION,
                             piData)==SQLITE_OK ){
      *pbData = 1;
    }
    return SQLITE_OK;
  }
  if( p->bSchema ){
    *piVersion = p->iSchema;
    return SQLITE_OK;
  }
  rc = atomicSchemaVersion(p, piVersion);
  if( rc==SQLITE_OK && p->bJoined ){
    p->iSchema = *piVersion;
    p->bSchema = 1;
  }
  return rc;
}

/*
** True if the kept statement of pSql may no longer describe SQLite's
** schema, which is now as sqlSchemaNow() said, so that it must be
** prepared again to check that its tables still exist.
*/
static int sqlStale(AtomicSql *pSql, int iVersion, unsigned int iData,
                    int bData){
#ifndef SQLITE_OMIT_DEPRECATED
# ifndef SQLITE_CORE
  if( sqlite3_api->expired==0 ) return 1;
# endif
  if( sqlite3_expired(pSql->pStmt) ) return 1;
#else
  return 1;
#endif
  if( bData ) return !pSql->bData || pSql->iData!=iData;
  return iVersion<0 || iVersion!=pSql->iSchema;
}

/* The kept statement of pSql was checked against the schema as it is */
static void sqlChecked(AtomicSql *pSql, int iVersion, unsigned int iData,
                       int bData){
  if( bData ){
    pSql->iData = iData;
    pSql->bData = 1;
  }else{
    pSql->iSchema = iVersion;
  }
}

/*
** The kept statement of pSql ran to completion: SQLite checked its schema.
** If that left the connection in autocommit mode, it describes the schema
** of main as of main's data version now.
*/
ATM_PRIVATE void atomicSqlRan(AtomicSql *pSql){
  AtomicConn *p = pSql->p;
  unsigned int iData;
  if( sqlite3_get_autocommit(p->db)
   && sqlite3_file_control(p->db, "main", SQLITE_FCNTL_DATA_VERSION,
                           &iData)==SQLITE_OK
  ){
    sqlChecked(pSql, -1, iData, 1);
  }
}

/*
** Prepare zSql (nSql bytes) as a callback statement: exactly one statement
** that prepares now.  On success *ppStmt is the statement.  Otherwise
** *pzErr is the message (NULL on OOM) and an error code is returned.
*/
ATM_PRIVATE int atomicSqlPrepare(AtomicConn *p, const char *zSql, int nSql,
                                 sqlite3_stmt **ppStmt, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  const char *zTail = 0;
  int rc = atomicGuard(p);
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v3(p->db, zSql, nSql, SQLITE_PREPARE_PERSISTENT,
                            &pStmt, &zTail);
  }
  if( rc!=SQLITE_OK ){
    rc = sqlite3_extended_errcode(p->db);
    *pzErr = atomicMprintf("%s", sqlite3_errmsg(p->db));
  }else if( pStmt==0 ){
    rc = SQLITE_ERROR;
    *pzErr = atomicMprintf("the SQL is empty; give one statement");
  }else if( zTail && (zTail-zSql)<nSql && !sqlTailEmpty(zTail) ){
    rc = SQLITE_ERROR;
    *pzErr = atomicMprintf("the SQL holds more than one statement; "
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
** kept statement, and with no reference taken.  Returns SQLITE_OK, or an
** error with *pzErr set to its message (NULL on OOM).
*/
ATM_PRIVATE int atomicSqlGet(AtomicConn *p, const char *zSql, int nSql,
                             AtomicSql **ppOut, char **pzErr){
  unsigned int h = sqlHash(zSql, nSql);
  AtomicSql *pSql = 0;
  sqlite3_stmt *pStmt = 0;
  int iVersion = -1;
  unsigned int iData = 0;
  int bData = 0;
  int rc = sqlSchemaNow(p, &iVersion, &iData, &bData);
  if( rc!=SQLITE_OK ){
    /* (A failed read can make SQLite roll the transaction back) */
    *pzErr = atomicStepError(p);
    return rc;
  }
  if( p->nSqlHash ){
    for(pSql=p->aSqlHash[h & (p->nSqlHash-1)]; pSql; pSql=pSql->pNext){
      if( pSql->iHash==h && pSql->nSql==nSql
       && memcmp(pSql->zSql, zSql, nSql)==0
      ){
        break;
      }
    }
  }
  if( pSql && pSql->pStmt && !sqlStale(pSql, iVersion, iData, bData) ){
    if( pSql!=p->pLruFirst ){
      sqlLruUnlink(p, pSql);
      sqlLruPush(p, pSql);
    }
    *ppOut = pSql;
    return SQLITE_OK;
  }
  rc = atomicSqlPrepare(p, zSql, nSql, &pStmt, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( pSql && pSql->pStmt && sqlite3_stmt_busy(pSql->pStmt) ){
    /* Checked; the kept statement is running, so it stays */
    sqlite3_finalize(pStmt);
    sqlChecked(pSql, iVersion, iData, bData);
    *ppOut = pSql;
    return SQLITE_OK;
  }
  if( pSql ){
    if( pSql->pStmt ){
      sqlLruUnlink(p, pSql);
      sqlite3_finalize(pSql->pStmt);
      pSql->pStmt = 0;
    }
  }else{
    if( sqlRehash(p)!=SQLITE_OK
     || (pSql = atomicMalloc(sizeof(*pSql)+nSql+1))==0
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
  pSql->iSchema = -1;
  pSql->bData = 0;
  sqlChecked(pSql, iVersion, iData, bData);
  atomicSqlKeep(pSql, pStmt);
  *ppOut = pSql;
  return SQLITE_OK;
}
