"""The dashboard's page, script and style: small, self-contained, nothing from a CDN.

The script polls ``/dashboard/api/state`` (every ``refreshSeconds`` the server names) and redraws
the environments in place; every value goes into the page as text (``textContent``), never as
markup. The page's Content-Security-Policy only lets in this script and style, and connections
to this origin.
"""

from __future__ import annotations

from html import escape
from typing import Final

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

STYLE: Final = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2430}
header{background:#1d2430;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1rem;align-items:center}
header h1{font-size:1.1rem;margin:0;flex:1}header form{margin:0}
#meta{font-size:.85rem;opacity:.85}main{padding:1rem;display:grid;gap:1rem;
grid-template-columns:repeat(auto-fill,minmax(24rem,1fr))}
.env{background:#fff;border-radius:6px;padding:.8rem 1rem;box-shadow:0 1px 3px #0002}
.env h2{font-size:1.05rem;margin:.1rem 0 .4rem;display:flex;gap:.5rem;align-items:center}
.status{font-size:.75rem;padding:.1rem .45rem;border-radius:3px;background:#ccc}
.s-AVAILABLE{background:#c7f0d0}.s-CREATING,.s-UPDATING,.s-PENDING{background:#fde8b0}
.s-CREATE_FAILED,.s-UPDATE_FAILED,.s-UNAVAILABLE{background:#f7c4c4}
.sub{font-size:.8rem;color:#5a6270}table{border-collapse:collapse;font-size:.85rem;margin:.3rem 0}
td,th{padding:.1rem .6rem .1rem 0;text-align:left}.bad{color:#b00020}.ok{color:#17692b}
h3{font-size:.85rem;margin:.6rem 0 .2rem}ul{margin:0;padding-left:1.1rem;font-size:.85rem}
.note{font-size:.8rem;color:#5a6270;font-style:italic}#error{color:#b00020;padding:0 1rem}
"""

SCRIPT: Final = r"""
(function(){
'use strict';
var timer=null;
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;
 if(text!==undefined&&text!==null)e.textContent=String(text);return e;}
function link(text,url){if(!url)return el('span',null,text);var a=el('a',null,text);a.href=url;
 a.target='_blank';a.rel='noopener noreferrer';return a;}
function section(card,title,items,render,empty){card.appendChild(el('h3',null,title));
 if(!items||!items.length){card.appendChild(el('div','note',empty));return;}
 var ul=el('ul');items.forEach(function(i){var li=el('li');render(li,i);ul.appendChild(li);});
 card.appendChild(ul);}
function card(env){
 var c=el('section','env');c.id='env-'+env.name;c.setAttribute('data-status',env.status);
 var h=el('h2');h.appendChild(el('span','name',env.name));
 h.appendChild(el('span','status s-'+env.status,env.status));c.appendChild(h);
 var dot=' \u00b7 ';
 c.appendChild(el('div','sub','Airflow '+(env.airflowVersion||'?')+dot+env.accountId+dot+env.region));
 if(env.lastError)c.appendChild(el('div','bad',env.lastError));
 c.appendChild(el('div','counts','Web servers: '+env.webServers+' \u00b7 Workers: '+env.workers));
 var names=Object.keys(env.health||{});
 if(names.length){var t=el('table','health');names.forEach(function(n){var r=el('tr');
  r.appendChild(el('td',null,n));var s=env.health[n];
  r.appendChild(el('td',s==='healthy'?'ok':(s==='unhealthy'?'bad':null),s));
  t.appendChild(r);});c.appendChild(t);}
 else c.appendChild(el('div','note','Component health: not reported ('+env.status+').'));
 if(env.dataError)c.appendChild(el('div','bad','Airflow: '+env.dataError));
 if(!env.dagDataVisible){c.appendChild(el('div','note hidden-dags',
  'DAG data hidden: your policy does not allow airflow:InvokeRestApi on this environment.'));}
 else if(env.runsByState){
  c.appendChild(el('h3',null,'DAG runs, last 24 h'));var t2=el('table','runs'),hr=el('tr'),vr=el('tr');
  ['queued','running','success','failed'].forEach(function(s){hr.appendChild(el('th',null,s));
   vr.appendChild(el('td',s==='failed'&&env.runsByState[s]?'bad':null,env.runsByState[s]));});
  t2.appendChild(hr);t2.appendChild(vr);c.appendChild(t2);
  section(c,'Failing DAGs',env.failingDags,function(li,d){li.className='failing-dag';
   li.appendChild(link(d.dagId,d.url));li.appendChild(document.createTextNode(
   ' \u2014 '+d.failedRuns+' failed run(s), last '+d.lastRunId+' '+d.lastFailure));},'None.');
  section(c,'Failed task instances',env.failedTasks,function(li,t){li.className='failed-task';
   li.appendChild(link(t.dagId+'.'+t.taskId,t.url));li.appendChild(document.createTextNode(
   ' run '+t.runId+(t.tryNumber?' try '+t.tryNumber:'')+' '+t.endDate));},'None.');}
 if(env.airflowUrl){var p=el('p');p.appendChild(link('Open the Airflow UI',env.airflowUrl));c.appendChild(p);}
 section(c,'Recent audit decisions',env.audit,function(li,a){li.className='audit';
  li.textContent=a.time+' '+a.decision+' '+a.action+' '+(a.principal||'-')+' ('+a.status+')';},'None.');
 return c;}
function draw(state){
 document.getElementById('viewer').textContent=state.viewer;
 document.getElementById('meta').textContent='Updated '+state.generatedAt+' \u00b7 '+
  state.environments.length+' environment(s) \u00b7 refresh every '+state.refreshSeconds+' s';
 var main=document.getElementById('environments');var next=document.createDocumentFragment();
 state.environments.forEach(function(e){next.appendChild(card(e));});
 if(!state.environments.length)next.appendChild(el('p','note','No environment your policy lets you see '+
  '(airflow:GetEnvironment).'));
 main.replaceChildren(next);document.body.setAttribute('data-loaded','true');}
function poll(){
 fetch('/dashboard/api/state',{credentials:'same-origin',headers:{'Accept':'application/json'}})
 .then(function(r){return r.json().then(function(b){return{ok:r.ok,body:b};});})
 .then(function(r){var err=document.getElementById('error');
  if(!r.ok){err.textContent=(r.body&&r.body.message)||'The dashboard could not be loaded.';
   if(r.body&&r.body.signIn){clearInterval(timer);}return;}
  err.textContent='';draw(r.body);
  if(timer===null)timer=setInterval(poll,Math.max(1,r.body.refreshSeconds)*1000);})
 .catch(function(){
  document.getElementById('error').textContent='openmwaa could not be reached; retrying.';});}
poll();
})();
"""


def page() -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<title>openmwaa dashboard</title><link rel=stylesheet href='/dashboard/app.css'></head><body>"
        "<header><h1>openmwaa dashboard</h1><span id=viewer></span>"
        "<form method=post action='/dashboard/signout'><button type=submit>Sign out</button></form>"
        "</header><div id=meta>Loading&hellip;</div><div id=error></div>"
        "<main id=environments></main><script src='/dashboard/app.js'></script></body></html>"
    )


def message_page(title: str, message: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title></head><body>"
        f"<h1>{escape(title)}</h1><p id=error>{escape(message)}</p></body></html>"
    )
