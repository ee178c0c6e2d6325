// GET /v2/conversations/{conversation_id}: a conversation with its documents.
import { json, type Handler, type SimResource } from '../serve.ts';
import { conversationOf } from './conversations.ts';

const conversation: Handler = (ctx, { params }) =>
  json(ctx.data.conversation(conversationOf(ctx, params.conversation_id)));

export default {
  routes: [{ method: 'GET', path: '/v2/conversations/{conversation_id}', handle: conversation }],
  groundTruth: (e, q) => e.conversationDocuments(q.get('conversation_id') ?? ''),
} satisfies SimResource;
