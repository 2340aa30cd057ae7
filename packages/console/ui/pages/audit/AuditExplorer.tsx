// Search and page through the audit log, open one record with its inclusion
// proof, and verify the whole log. /audit/41 opens record 41 directly.
import { useState } from 'react';
import { api } from '../../api/client.ts';
import { ErrorNote } from '../../common/ErrorNote.tsx';
import { EventTable } from '../../common/EventTable.tsx';
import { useLoad } from '../../hooks/use-load.ts';
import { navigate } from '../../hooks/use-route.ts';
import { AuditSearch, type Search } from './AuditSearch.tsx';
import { RecordDetail } from './RecordDetail.tsx';
import { VerifyBadge } from './VerifyBadge.tsx';

const PAGE = 50;

function openSeq(path: string): number | null {
  const match = /^\/audit\/(\d+)$/.exec(path);
  return match ? Number(match[1]) : null;
}

export function AuditExplorer({ path }: { path: string }) {
  const [search, setSearch] = useState<Search>({});
  // The `before` of each page shown so far: the last is the current page, popping goes back to newer pages.
  const [pages, setPages] = useState<Array<number | null>>([null]);
  const before = pages[pages.length - 1] ?? null;
  const result = useLoad(() => api.audit(search, before, PAGE), [search, before]);
  const open = openSeq(path);

  return (
    <section aria-labelledby="audit-title">
      <div className="page-head">
        <h1 id="audit-title">Audit log</h1>
        <VerifyBadge />
      </div>
      {open !== null && <RecordDetail seq={open} onClose={() => navigate('/audit')} />}
      <AuditSearch
        onSearch={(next) => {
          setSearch(next);
          setPages([null]);
        }}
      />
      <ErrorNote error={result.error} />
      {result.data && (
        <>
          <p className="muted" role="status">
            {result.data.records.length === 0 ? 'No records match.' : `${result.data.records.length} records shown, newest first. The log holds ${result.data.size}.`}
          </p>
          <EventTable events={result.data.records} caption="Audit records" onOpen={(seq) => navigate(`/audit/${seq}`)} />
          <div className="pager">
            <button type="button" disabled={pages.length <= 1} onClick={() => setPages((p) => p.slice(0, -1))}>
              Newer
            </button>
            <button type="button" disabled={result.data.nextBefore === null} onClick={() => setPages((p) => [...p, result.data?.nextBefore ?? null])}>
              Older
            </button>
          </div>
        </>
      )}
    </section>
  );
}
