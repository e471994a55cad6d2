import postgres from 'postgres';

export type Sql = postgres.Sql;
export type TransactionSql = postgres.TransactionSql;
/** Either the pool or a transaction: queries take this so that callers choose the boundary. */
export type Queryable = Sql | TransactionSql;

export interface ConnectOptions {
  max?: number;
  applicationName?: string;
}

/**
 * One connection pool. int8 columns (sequence numbers, epochs, counts) are parsed as numbers: none
 * of them comes near 2^53. Result columns arrive camelCased.
 */
export function connect(url: string, options: ConnectOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    connect_timeout: 5,
    idle_timeout: 60,
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
}
