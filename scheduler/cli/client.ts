import { readFileSync } from 'node:fs';
import path from 'node:path';

/** A small client of proofpod's REST API. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly token: string,
  ) {}

  async request<T>(method: string, urlPath: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.baseUrl}${urlPath}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (!response.ok) {
      const message = (parsed as { message?: string } | undefined)?.message ?? text;
      throw new ApiError(response.status, `${method} ${urlPath}: ${response.status} ${message}`);
    }
    return parsed as T;
  }
}

/** A GET answered with text, handed on chunk by chunk as it arrives (a followed log). */
export async function streamText(client: ApiClient, urlPath: string, onText: (text: string) => void): Promise<void> {
  const response = await fetch(`${client.baseUrl}${urlPath}`, { headers: { authorization: `Bearer ${client.token}` } });
  if (!response.ok) {
    const text = await response.text();
    let message = text;
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? text;
    } catch {
      // not JSON
    }
    throw new ApiError(response.status, `GET ${urlPath}: ${response.status} ${message}`);
  }
  const decoder = new TextDecoder();
  for await (const chunk of response.body ?? []) onText(decoder.decode(chunk as Uint8Array, { stream: true }));
  const rest = decoder.decode();
  if (rest) onText(rest);
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** `PROOFPOD_TOKEN`, else the admin token the local default saved under `PROOFPOD_HOME`. */
export function resolveToken(environment: NodeJS.ProcessEnv): string {
  if (environment.PROOFPOD_TOKEN) return environment.PROOFPOD_TOKEN;
  const file = path.join(path.resolve(environment.PROOFPOD_HOME ?? '.proofpod'), 'admin-token');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    throw new Error(`no token: set PROOFPOD_TOKEN, or run where ${file} exists (the local default writes it on first start)`);
  }
}
