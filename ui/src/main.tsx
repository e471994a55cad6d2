/**
 * The dashboard: a view of the estate through the public REST API with the user's own token. It
 * renders every string the API returns as text (Preact's children become text nodes; nothing here
 * sets innerHTML), because reasons, labels and logs carry whatever hostile proof sources wrote.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { clearToken, setUnauthorizedHandler, storeToken, storedToken } from './api.js';
import { ApprovalsPage } from './pages/approvals.js';
import { JobPage } from './pages/job.js';
import { JobsPage } from './pages/jobs.js';
import { LanesPage } from './pages/lanes.js';
import { SignIn } from './pages/sign-in.js';

type Route = { page: 'lanes' } | { page: 'jobs' } | { page: 'job'; id: string } | { page: 'approvals' };

/** Routes live in the fragment (#/jobs/…), which is never sent to a server; the token never does. */
function routeOf(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/');
  if (parts[0] === 'jobs' && parts[1]) return { page: 'job', id: decodeURIComponent(parts[1]) };
  if (parts[0] === 'jobs') return { page: 'jobs' };
  if (parts[0] === 'approvals') return { page: 'approvals' };
  return { page: 'lanes' };
}

function App() {
  const [token, setToken] = useState<string | null>(storedToken());
  const [notice, setNotice] = useState<string | null>(null);
  const [route, setRoute] = useState<Route>(routeOf(location.hash));

  useEffect(() => {
    const onHash = () => setRoute(routeOf(location.hash));
    window.addEventListener('hashchange', onHash);
    setUnauthorizedHandler(() => {
      clearToken();
      setToken(null);
      setNotice('The API refused the token (expired, revoked or unknown): sign in again.');
    });
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  if (!token) {
    return (
      <main>
        <SignIn
          notice={notice}
          onSignedIn={(t) => {
            storeToken(t);
            setNotice(null);
            setToken(t);
          }}
        />
      </main>
    );
  }

  const signOut = () => {
    clearToken();
    setToken(null);
    setNotice('Signed out.');
  };

  return (
    <>
      <header>
        <span class="brand">proofpod</span>
        <nav aria-label="main">
          <a href="#/lanes" aria-current={route.page === 'lanes' ? 'page' : undefined}>
            Lanes
          </a>
          <a href="#/jobs" aria-current={route.page === 'jobs' || route.page === 'job' ? 'page' : undefined}>
            Jobs
          </a>
          <a href="#/approvals" aria-current={route.page === 'approvals' ? 'page' : undefined}>
            Approvals
          </a>
        </nav>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>
        {route.page === 'lanes' && <LanesPage />}
        {route.page === 'jobs' && <JobsPage />}
        {route.page === 'job' && <JobPage key={route.id} id={route.id} />}
        {route.page === 'approvals' && <ApprovalsPage />}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
