// eslint for the client (`npm run lint`): JavaScript's recommended rules and the Svelte
// plugin's, with the globals of where each file runs: the app in the browser, the tests,
// the end-to-end harness and the configuration files in node.
import js from '@eslint/js';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';
import svelteConfig from './svelte.config.js';

export default [
  { ignores: ['dist/'] },
  js.configs.recommended,
  ...svelte.configs.recommended,
  {
    files: ['src/**/*.{js,svelte}'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['**/*.svelte'],
    languageOptions: { parserOptions: { svelteConfig } },
  },
  {
    files: ['test/**/*.js', '*.config.js'],
    languageOptions: { globals: globals.node },
  },
  {
    // The end-to-end tests run in node and hand functions to the page to run in the
    // browser (page.evaluate, waitForFunction): both sets of globals are real there.
    files: ['e2e/**/*.js'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
];
