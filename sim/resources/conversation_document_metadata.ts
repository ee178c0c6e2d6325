// GET /v2/conversations/{conversation_id}/documents/{document_id}.
import { decodeSegment, HttpError } from '../http.ts';
import { json, type Handler, type SimResource } from '../serve.ts';
import { conversationOf } from './conversations.ts';

const documentMetadata: Handler = (ctx, { params }) => {
  const c = conversationOf(ctx, params.conversation_id);
  // Ids may be past 2^53: compared as text, never through a double.
  const docId = decodeSegment(params.document_id ?? '');
  const meta = /^\d+$/.test(docId) ? ctx.data.documentMetadata(c, docId) : undefined;
  if (!meta) throw new HttpError(404, 'Document not found');
  return json(meta);
};

export default {
  routes: [
    {
      method: 'GET',
      path: '/v2/conversations/{conversation_id}/documents/{document_id}',
      handle: documentMetadata,
    },
  ],
} satisfies SimResource;
