/*
** json.c -- a callback's arguments as a JSON array, for the args column
** of atomic_pending (pending.c).
**
** Integers and reals are numbers (an infinity is written as SQLite's JSON
** functions write it, 9e999), text is a string, a blob is the string
** "x'<hex>'", NULL is null.
*/
#include "atomicInt.h"

/* A growing text */
typedef struct AtomicBuf AtomicBuf;
struct AtomicBuf {
  char *z;                  /* Text so far, nul-terminated */
  i64 n;                    /* Bytes in z */
  i64 nAlloc;               /* Bytes allocated */
  int bOom;                 /* An allocation failed */
};

/* Append n bytes of z; after an allocation failure, nothing */
static void jsonAppend(AtomicBuf *pBuf, const char *z, i64 n){
  if( pBuf->bOom ) return;
  if( pBuf->n+n+1>pBuf->nAlloc ){
    i64 nNew = pBuf->nAlloc ? pBuf->nAlloc*2 : 64;
    char *zNew;
    while( nNew<pBuf->n+n+1 ) nNew *= 2;
    zNew = atomicRealloc(pBuf->z, nNew);
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
static void jsonString(AtomicBuf *pBuf, const char *z, int n){
  int i;
  jsonAppend(pBuf, "\"", 1);
  for(i=0; i<n; i++){
    unsigned char c = (unsigned char)z[i];
    char zEsc[8];
    if( c=='"' || c=='\\' ){
      zEsc[0] = '\\';
      zEsc[1] = (char)c;
      jsonAppend(pBuf, zEsc, 2);
    }else if( c<0x20 ){
      sqlite3_snprintf(sizeof(zEsc), zEsc, "\\u%04x", c);
      jsonAppend(pBuf, zEsc, 6);
    }else{
      jsonAppend(pBuf, (const char*)&z[i], 1);
    }
  }
  jsonAppend(pBuf, "\"", 1);
}

/*
** The arguments of pCb as a JSON array, in memory from sqlite3_malloc(), or
** NULL on OOM.
*/
ATM_PRIVATE char *atomicArgsJson(AtomicCallback *pCb){
  AtomicBuf buf;
  int i;
  memset(&buf, 0, sizeof(buf));
  jsonAppend(&buf, "[", 1);
  for(i=0; i<pCb->nArg; i++){
    AtomicValue *pV = &pCb->aArg[i];
    char zNum[40];
    if( i>0 ) jsonAppend(&buf, ",", 1);
    switch( pV->eType ){
      case SQLITE_INTEGER:
        sqlite3_snprintf(sizeof(zNum), zNum, "%lld", pV->u.i);
        jsonAppend(&buf, zNum, (i64)strlen(zNum));
        break;
      case SQLITE_FLOAT:
        /* (SQLite stores a NaN as NULL: a REAL value is never one) */
        if( pV->u.r>1.7976931348623157e308 ){
          sqlite3_snprintf(sizeof(zNum), zNum, "9e999");
        }else if( pV->u.r< -1.7976931348623157e308 ){
          sqlite3_snprintf(sizeof(zNum), zNum, "-9e999");
        }else{
          sqlite3_snprintf(sizeof(zNum), zNum, "%!.17g", pV->u.r);
        }
        jsonAppend(&buf, zNum, (i64)strlen(zNum));
        break;
      case SQLITE_TEXT:
        jsonString(&buf, pV->u.z, pV->n);
        break;
      case SQLITE_BLOB: {
        static const char aHex[] = "0123456789abcdef";
        int j;
        jsonAppend(&buf, "\"x'", 3);
        for(j=0; j<pV->n; j++){
          char zHex[2];
          zHex[0] = aHex[((unsigned char)pV->u.z[j])>>4];
          zHex[1] = aHex[((unsigned char)pV->u.z[j])&0xf];
          jsonAppend(&buf, zHex, 2);
        }
        jsonAppend(&buf, "'\"", 2);
        break;
      }
      default:
        jsonAppend(&buf, "null", 4);
        break;
    }
  }
  jsonAppend(&buf, "]", 1);
  if( buf.bOom ){
    sqlite3_free(buf.z);
    return 0;
  }
  return buf.z;
}
