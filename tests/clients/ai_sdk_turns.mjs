// Three turns of the Vercel AI SDK (`ai` + a Responses provider) against the gateway,
// a tool call in the middle, each result's `response.messages` fed back as the AI SDK
// documents. Prints one JSON line: the texts, the tool calls, and every request body
// the SDK sent (so the test sees its item_reference items).
//
//   GATEWAY_URL=http://127.0.0.1:PORT/v1 GATEWAY_KEY=… SYSTEM=… MODE=openai|reasoning|open-responses
//   node ai_sdk_turns.mjs
import { generateText, jsonSchema, stepCountIs, tool } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenResponses } from "@ai-sdk/open-responses";

const { GATEWAY_URL, GATEWAY_KEY, SYSTEM, MODE } = process.env;
const sent = [];
const recordingFetch = async (url, init) => {
  if (init && typeof init.body === "string") sent.push(JSON.parse(init.body));
  return fetch(url, init);
};

let model;
let providerOptions = {};
if (MODE === "open-responses") {
  const provider = createOpenResponses({
    name: "gateway", url: `${GATEWAY_URL}/responses`, apiKey: GATEWAY_KEY, fetch: recordingFetch,
  });
  model = provider("gpt-5-codex");
} else {
  const provider = createOpenAI({ baseURL: GATEWAY_URL, apiKey: GATEWAY_KEY, fetch: recordingFetch });
  model = provider("gpt-5-codex");  // the Responses API: the provider's default
  if (MODE === "reasoning") {
    providerOptions = { openai: { reasoningSummary: "auto", reasoningEffort: "low" } };
  }
}

const calls = [];
const tools = {
  get_weather: tool({
    description: "The weather in a city.",
    inputSchema: jsonSchema({
      type: "object", properties: { city: { type: "string" } }, required: ["city"],
      additionalProperties: false,
    }),
    execute: async ({ city }) => { calls.push(city); return `18C and sunny in ${city}`; },
  }),
};

const prompts = [
  "[[say:Hello, ready.]] first question",
  'Weather? [[call:get_weather {"city":"Paris"}]]',
  "[[say:Goodbye.]] third question",
];
const messages = [];
const texts = [];
for (const prompt of prompts) {
  messages.push({ role: "user", content: prompt });
  const result = await generateText({
    model, system: SYSTEM, messages, tools, providerOptions, stopWhen: stepCountIs(3),
  });
  messages.push(...result.response.messages);
  texts.push(result.text);
}
console.log(JSON.stringify({ texts, calls, sent }));
