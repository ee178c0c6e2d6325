// GET /v2/conversations.
import { decodeSegment, HttpError } from '../http.ts';
import { json, list, type Handler, type SimContext, type SimResource } from '../serve.ts';

/** The index of the conversation a path names, or a 404. */
export function conversationOf(ctx: SimContext, conversationId: string | undefined): number {
  const c = ctx.data.conversationIndex(decodeSegment(conversationId ?? ''));
  if (c === undefined) throw new HttpError(404, 'Conversation not found');
  return c;
}

const listConversations: Handler = (ctx) =>
  json(
    list(
      ctx,
      'conversations',
      ctx.data.conversationIndexes().map((c) => ctx.data.conversationSummary(c)),
    ),
  );

/** Below a conversation only its documents' metadata is served; an unknown one is still "not found". */
const belowConversation: Handler = (ctx, { params }) => {
  conversationOf(ctx, params.conversation_id);
  return undefined;
};

export default {
  routes: [
    { method: 'GET', path: '/v2/conversations', handle: listConversations },
    { method: 'GET', path: '/v2/conversations/{conversation_id}/**', handle: belowConversation },
  ],
  groundTruth: (e) => e.conversations(),
} satisfies SimResource;
