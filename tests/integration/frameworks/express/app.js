// An Express app as its tutorials write one. MODE:
//   memory  express-session with its default MemoryStore (sessions in the process)
//   shared  cookie-session: the session in a cookie signed with SECRET_KEY from the environment
const express = require("express");

const app = express();
app.use(express.urlencoded({ extended: false }));
if (process.env.MODE === "memory") {
  const session = require("express-session");
  app.use(session({ secret: process.env.SECRET_KEY, resave: false, saveUninitialized: false }));
} else {
  const cookieSession = require("cookie-session");
  app.use(cookieSession({ name: "session", keys: [process.env.SECRET_KEY] }));
}

function requireLogin(req, res, next) {
  if (!req.session.user) return res.redirect("/login?next=" + encodeURIComponent(req.path));
  next();
}

app.get("/login", (req, res) => res.send('<form method="post"><input name="username"></form>'));
app.post("/login", (req, res) => {
  req.session.user = req.body.username;
  res.redirect(req.query.next || "/me");
});
app.get("/me", requireLogin, (req, res) => res.json({ user: req.session.user }));
app.get("/me/items", requireLogin, (req, res) => res.json({ items: [] }));

app.listen(Number(process.env.PORT), "127.0.0.1", () => console.log(`listening on ${process.env.PORT}`));
