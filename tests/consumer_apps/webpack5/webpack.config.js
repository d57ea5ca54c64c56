// A plain webpack 5 configuration: nothing specific to the packaged model (webpack copies what
// `new URL("./file", import.meta.url)` points at on its own).
import path from "node:path";
import { fileURLToPath } from "node:url";
import HtmlWebpackPlugin from "html-webpack-plugin";

const here = path.dirname(fileURLToPath(import.meta.url));

export default {
  entry: "./src/index.js",
  output: { path: path.join(here, "dist"), filename: "[name].[contenthash].js", clean: true },
  plugins: [new HtmlWebpackPlugin({ title: "A webpack app using the packaged model" })],
  performance: { hints: false },
};
