import { useState } from 'preact/hooks';
import { tokenWorks } from '../api.js';
import { messageOf } from '../common.js';

export function SignIn({ notice, onSignedIn }: { notice: string | null; onSignedIn: (token: string) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const pasted = token.trim();
    if (!pasted) return setError('paste a token first');
    setBusy(true);
    setError(null);
    try {
      if (await tokenWorks(pasted)) onSignedIn(pasted);
      else setError('the API refused this token (unknown or revoked)');
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="signin">
      <h1>Sign in</h1>
      <p>Paste a proofpod API token. It is kept in this tab's session storage only, and sent to the API in the Authorization header.</p>
      {notice && <p role="status">{notice}</p>}
      <form onSubmit={submit}>
        <label>
          API token
          <input type="password" autocomplete="off" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        </label>
        <p>
          <button type="submit" disabled={busy}>
            Sign in
          </button>
        </p>
      </form>
      {error && <p role="alert">{error}</p>}
    </section>
  );
}
