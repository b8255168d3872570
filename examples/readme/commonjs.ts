// CommonJS (a package.json without `"type": "module"`, as `npm init -y` makes it): no top-level
// await, so wrap the calls in a function. tsx and tsc compile the imports to `require('keymesh')`,
// which loads the CommonJS build; in plain JavaScript write `const { KeyPool } = require('keymesh')`.
import { KeyPool } from 'keymesh';
import { startLocalProvider } from 'keymesh/sim';

async function main(): Promise<void> {
  const keys = ['sk-fake-readme-cjs-key-a', 'sk-fake-readme-cjs-key-b'];
  const provider = await startLocalProvider({ keys }); // a local stand-in for your provider
  const pool = await KeyPool.create({ keys });
  try {
    const reply = await pool.withKey(async (key) => {
      const response = await fetch(`${provider.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi!' }] }),
      });
      return response.ok ? response.json() : response; // an error response is classified and settled
    });
    console.log(reply);
  } finally {
    await pool.close();
    await provider.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
