// The script embed runs on its own (`<script type="module" src=".../waba-onboard-embed.js">`,
// or `import "waba-onboard/embed";`) and exports nothing.
export {};
