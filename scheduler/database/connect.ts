import postgres from 'postgres';

export type Sql = postgres.Sql;
export type TransactionSql = postgres.TransactionSql;
/** Either the pool or a transaction: queries take this so that callers choose the boundary. */
export type Queryable = Sql | TransactionSql;

export interface ConnectOptions {
  max?: number;
  applicationName?: string;
}

/** The longest wait, in seconds, before a connection is tried again after a failed attempt. */
const MAX_RECONNECT_DELAY_SECONDS = 2;

/**
 * One connection pool. int8 columns (sequence numbers, epochs, counts) are parsed as numbers: none
 * of them comes near 2^53. Result columns arrive camelCased.
 *
 * Reconnecting backs off from 0.1 s to 2 s. postgres.js's default, up to 20 s, counts failed
 * attempts across the whole pool, so an outage of a few seconds ran it to the top: a replica
 * stayed idle for 20 s after Postgres was back, and its heartbeats with it.
 */
export function connect(url: string, options: ConnectOptions = {}): Sql {
  const sql = postgres(url, {
    max: options.max ?? 10,
    connect_timeout: 5,
    idle_timeout: 60,
    backoff: (failedAttempts) => (0.5 + Math.random() / 2) * Math.min(0.1 * 2 ** failedAttempts, MAX_RECONNECT_DELAY_SECONDS),
    onnotice: () => {},
    connection: { application_name: options.applicationName ?? 'proofpod' },
    transform: { column: { from: postgres.toCamel } },
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (value: number) => String(value),
        parse: (value: string) => Number(value),
      },
    },
  });
  fetchArrayTypesOnce(sql);
  guardTransactions(sql);
  endSessionsWithPool(sql);
  return sql;
}

/**
 * Works around postgres.js 3.4.9 (porsager/postgres#1192, #1205, #1223): every new connection
 * first reads the server's array types, and the promise of that query is dropped, so a connection
 * lost during it is an unhandled rejection, which ends a Node process. After a Postgres restart
 * every reconnect races that. The types are shared by the pool's connections and are the server's
 * built-ins (the schema defines none), so once one connection has read them the others skip it.
 */
function fetchArrayTypesOnce(sql: Sql): void {
  const options = sql.options as unknown as { fetch_types: boolean; shared: { typeArrayMap: Record<number, number> } };
  const wanted = options.fetch_types;
  Object.defineProperty(options, 'fetch_types', {
    configurable: true,
    enumerable: true,
    get: () => wanted && Object.keys(options.shared.typeArrayMap).length === 0,
  });
}

/**
 * Works around postgres.js 3.4.9 (porsager/postgres#1208): when a transaction's connection is
 * lost while a query of it is in flight, `begin` sends ROLLBACK on that dead connection, whose
 * socket is gone, and the write throws outside any promise (`TypeError: Cannot read properties of
 * null (reading 'write')`, connection.js:255): the process dies. `begin` rejects on its own when
 * the connection closes, and the transaction ended with the session, so there is nothing to roll
 * back: a body that fails because its connection closed is held instead of handed back, and the
 * ROLLBACK is never sent. Any other failure is rethrown, and rolled back as usual.
 */
function guardTransactions(sql: Sql): void {
  const begin = sql.begin.bind(sql) as (options: string, body: (tx: TransactionSql) => unknown) => Promise<unknown>;
  const guarded = (first: string | ((tx: TransactionSql) => unknown), second?: (tx: TransactionSql) => unknown) => {
    const [options, body] = typeof first === 'string' ? [first, second!] : ['', first];
    let connectionClosed = false;
    const transaction = begin(options, async (tx) => {
      try {
        return await body(tx);
      } catch (error) {
        // The close that failed the query rejects `transaction` in the same turn of the event loop.
        await new Promise((resolve) => setImmediate(resolve));
        if (connectionClosed) return new Promise(() => {});
        throw error;
      }
    });
    transaction.catch(() => {
      connectionClosed = true;
    });
    return transaction;
  };
  Object.assign(sql, { begin: guarded });
}

const sessions = new WeakMap<Sql, Set<Sql>>();

/** Makes `sql.end()` end the sessions opened with `openSession(sql)` too, as it ends the pool's connections. */
function endSessionsWithPool(sql: Sql): void {
  const own = new Set<Sql>();
  sessions.set(sql, own);
  const end = sql.end.bind(sql);
  Object.assign(sql, {
    end: async (options?: { timeout?: number }) => {
      await Promise.all([end(options), ...[...own].map((session) => session.end(options))]);
    },
  });
}

/**
 * A client of its own single connection, with the pool's settings, for a session-level lock held
 * while other work goes through the pool. Not `sql.reserve()`: in postgres.js 3.4.9 a reserve that
 * waits while the server restarts can be dropped and never settle (porsager/postgres#1195), and a
 * reserved connection whose server went away is handed back to the pool still dead, where the next
 * query on it throws outside any promise (porsager/postgres#1208). Here every query goes through
 * the client's own pool of one, which reconnects or rejects; a reconnect is a new session, without
 * the old one's locks. The options are the pool's own, as postgres.js makes its LISTEN connection.
 * The connection is never closed for idling or age (that would drop a lock); ending the session,
 * or the pool it came from, closes it.
 */
export function openSession(pool: Sql, applicationName: string): Sql {
  const session = postgres({
    ...pool.options,
    max: 1,
    idle_timeout: null,
    max_lifetime: null,
    fetch_types: false,
    connection: { ...pool.options.connection, application_name: applicationName },
  } as unknown as postgres.Options<Record<string, postgres.PostgresType>>);
  const own = sessions.get(pool);
  own?.add(session);
  const end = session.end.bind(session);
  Object.assign(session, {
    end: async (options?: { timeout?: number }) => {
      own?.delete(session);
      await end(options);
    },
  });
  return session;
}
