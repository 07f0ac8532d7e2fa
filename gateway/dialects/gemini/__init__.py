"""Google's Gemini API (``generateContent``): Gemini CLI, the google-genai SDKs."""
